"""Operator keys from the terminal, without pynput (no display, no X server needed).

On a terminal, stdin goes into cbreak mode (no echo, no Enter needed) and each key press is
one key name: "right", "left", "up", "down" (arrow escape sequences, CSI or SS3), "esc",
"enter", or the lower-case character ("n", "r", "q", "y", ...). When stdin is not a terminal
(a pipe, a script, an SSH session without a tty) it reads line commands instead: one key name
or word per line ("next", "redo", "stop", "yes", "no" or any key name above).

Any object with `get(timeout) -> str | None` and `closed` can stand in for `TerminalKeys`
(tests feed scripted keys). lerobot 0.6.1 has a similar terminal reader
(`lerobot.utils.keyboard_input.TerminalKeyListener`), but importing it imports torch.
"""
from __future__ import annotations

import os
import select
import sys
import time
from typing import Protocol, TextIO

# Words accepted as line commands, besides the key names themselves.
LINE_WORDS = {"next": "right", "redo": "left", "rerecord": "left", "re-record": "left", "stop": "esc",
              "quit": "esc", "yes": "y", "no": "n", "": "enter"}
_ARROWS = {"A": "up", "B": "down", "C": "right", "D": "left"}
_ESCAPE_WAIT_S = 0.05  # the rest of an arrow's escape sequence arrives within this; else a bare Esc


class KeySource(Protocol):
    closed: bool

    def get(self, timeout: float) -> str | None:
        """The next key name within `timeout` seconds, else None."""


class TerminalKeys:
    """Keys from a file descriptor (stdin by default); a context manager that puts a terminal
    into cbreak mode without echo and restores it on exit (also after Ctrl-C)."""

    def __init__(self, stream: TextIO | int = sys.stdin):
        self.fd = stream if isinstance(stream, int) else stream.fileno()
        self.is_tty = os.isatty(self.fd)
        self.closed = False  # end of input (a pipe was closed); get() then only waits
        self._buffer = b""
        self._saved = None

    def __enter__(self) -> TerminalKeys:
        if self.is_tty:
            import termios
            import tty

            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)  # Ctrl-C still raises KeyboardInterrupt (ISIG stays on)
            attrs = termios.tcgetattr(self.fd)
            attrs[3] &= ~termios.ECHO  # arrows would echo as ^[[C
            termios.tcsetattr(self.fd, termios.TCSADRAIN, attrs)
        return self

    def __exit__(self, *exc) -> None:
        if self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def get(self, timeout: float) -> str | None:
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            key = self._parse()
            if key is not None:
                return key
            remaining = deadline - time.monotonic()
            if self.closed:
                time.sleep(max(0.0, remaining))
                return None
            if remaining <= 0 or not self._read(remaining):
                return None

    def _read(self, timeout: float) -> bool:
        """Append what is readable within `timeout` to the buffer; False when nothing was."""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return False
        data = os.read(self.fd, 1024)
        if not data:
            self.closed = True
            return False
        self._buffer += data
        return True

    def _parse(self) -> str | None:
        return self._parse_key() if self.is_tty else self._parse_line()

    def _parse_line(self) -> str | None:
        if b"\n" in self._buffer or (self.closed and self._buffer):  # a last line may lack its newline
            line, _, self._buffer = self._buffer.partition(b"\n")
            word = line.decode(errors="ignore").strip().lower()
            return LINE_WORDS.get(word, word)
        return None

    def _parse_key(self) -> str | None:
        while self._buffer:
            if self._buffer[:1] == b"\x1b":
                if len(self._buffer) < 3 and not self.closed:
                    self._read(_ESCAPE_WAIT_S)  # the rest of an arrow sequence, if it is one
                if len(self._buffer) >= 3 and self._buffer[1:2] in (b"[", b"O"):
                    final, self._buffer = chr(self._buffer[2]), self._buffer[3:]
                    if final in _ARROWS:
                        return _ARROWS[final]
                    continue  # another sequence (F-keys, ...): ignored
                self._buffer = self._buffer[1:]
                return "esc"
            char, self._buffer = self._buffer[:1].decode(errors="ignore"), self._buffer[1:]
            if char in ("\r", "\n"):
                return "enter"
            if char.isprintable() and char != " ":
                return char.lower()
        return None
