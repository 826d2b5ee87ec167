"""rosbag2 recordings read and written through `rosbags` (pure Python: MCAP and sqlite3, its own
message definitions; no ROS install, no rclpy).

Beyond rosbags' reader:
* A recording killed mid-write is read as far as it is readable. rosbag2 writes a bag's
  metadata.yaml, and an MCAP file's summary and footer, only when it closes; without them the
  files are read one by one, and an MCAP file record by record up to its last complete record.
* A storage plugin rosbags cannot read (or a ROS 1 bag) is an error naming the bag and the fix.
* std_srvs/Trigger service events (what `ros2 bag record --all-services` keeps of the recorder's
  services) decode, although rosbags' typestore has no service types.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Iterator

STORAGES = {".mcap": "mcap", ".db3": "sqlite3"}
MCAP_MAGIC = b"\x89MCAP0\r\n"
# rosbag2 names a service's event type <pkg>/srv/<Service>_Event; rosbags' message parser only
# takes msg names, so the same CDR layout is registered under this alias.
TRIGGER_EVENT = "std_srvs/srv/Trigger_Event"
TRIGGER_EVENT_ALIAS = "std_srvs/msg/Trigger_Event"
_TRIGGER_TYPES = {
    "std_srvs/msg/Trigger_Request": "uint8 structure_needs_at_least_one_member",
    "std_srvs/msg/Trigger_Response": "bool success\nstring message",
    TRIGGER_EVENT_ALIAS: ("service_msgs/msg/ServiceEventInfo info\n"
                          "std_srvs/msg/Trigger_Request[<=1] request\n"
                          "std_srvs/msg/Trigger_Response[<=1] response"),
}


class BagError(RuntimeError):
    """A bag that cannot be read or converted; the message names the file or topic and the fix."""


def typestore():
    """rosbags' ROS 2 Jazzy message types plus the Trigger service event."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    types: dict = {}
    for name, text in _TRIGGER_TYPES.items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store


def cdr_type(msgtype: str) -> str:
    """The typestore name that decodes a bag's `msgtype`."""
    return TRIGGER_EVENT_ALIAS if msgtype == TRIGGER_EVENT else msgtype


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _complete_records_end(bio, start: int, size: int) -> int:
    """Offset after the last whole MCAP record from `start` (op byte + uint64 length + body),
    stopping before DataEnd (0x0F), the footer (0x02) or a record cut off by the end of file."""
    pos = start
    while pos + 9 <= size:
        bio.seek(pos)
        head = bio.read(9)
        op, length = head[0], int.from_bytes(head[1:9], "little")
        if op in (0x02, 0x0F) or pos + 9 + length > size:
            break
        pos += 9 + length
    return pos


def _open_unfinished_mcap(path: Path):
    """rosbags' McapReader over an MCAP file that has no summary or footer: its records are
    scanned up to the last complete one (`meta_scan` / `messages_scan`, which rosbags also uses
    for files without an index)."""
    from rosbags.rosbag2.storage_mcap import McapReader, read_sized

    reader = McapReader(path)
    reader.bio = path.open("rb")
    try:
        if reader.bio.read(8) != MCAP_MAGIC or reader.bio.read(1) != b"\x01":
            raise BagError(f"{path}: not an MCAP file (no MCAP magic and header at its start)")
        read_sized(reader.bio)  # the header record: profile, library
        reader.data_start = reader.bio.tell()
        reader.data_end = _complete_records_end(reader.bio, reader.data_start, path.stat().st_size)
        reader.meta_scan()
    except Exception:
        reader.bio.close()
        raise
    return reader


@dataclass
class _Storage:
    """One reader (a whole bag or one of its files) and how to get its messages in file order."""
    name: str
    reader: Any
    unfinished: bool = False  # an MCAP file read without its summary: in file order, by scanning

    @property
    def connections(self) -> list:
        return list(self.reader.connections)

    def messages(self, topics: Collection[str]) -> Iterator[tuple[str, str, int, bytes]]:
        conns = [c for c in self.connections if c.topic in topics]
        if not conns:  # rosbags reads every topic when given none
            return
        source = self.reader.messages_scan(conns) if self.unfinished else self.reader.messages(connections=conns)
        for conn, timestamp, raw in source:
            yield conn.topic, conn.msgtype, int(timestamp), raw

    def close(self) -> None:
        try:
            self.reader.close()
        except Exception:  # closing a half-read file must not hide the conversion's outcome
            pass


@dataclass
class BagSource:
    """The messages of one recording: its topics and types, its messages in time order (per
    file for a bag read file by file) and what had to be repaired to read it."""
    path: Path
    storages: list[_Storage]
    notes: list[str] = field(default_factory=list)  # what was read differently, and why

    @property
    def topics(self) -> dict[str, str]:
        return {c.topic: c.msgtype for s in self.storages for c in s.connections}

    @property
    def files(self) -> list[str]:
        return [s.name for s in self.storages]

    def messages(self, topics: Collection[str]) -> Iterator[tuple[str, str, int, bytes]]:
        """(topic, type, receive time in ns, CDR bytes) of `topics`."""
        for storage in self.storages:
            yield from storage.messages(set(topics))

    def head(self, topic: str, count: int) -> list[tuple[int, bytes]]:
        """(time, bytes) of the first `count` messages on `topic`."""
        out: list[tuple[int, bytes]] = []
        for _topic, _msgtype, timestamp, raw in self.messages([topic]):
            out.append((timestamp, raw))
            if len(out) == count:
                break
        return out

    def close(self) -> None:
        for storage in self.storages:
            storage.close()

    def __enter__(self) -> BagSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _storage_identifier(metadata: Path) -> str:
    import yaml

    try:
        info = yaml.safe_load(metadata.read_text())["rosbag2_bagfile_information"]
        return str(info.get("storage_identifier", ""))
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise BagError(f"{metadata}: unreadable rosbag2 metadata ({exc}); move it away to read the bag's "
                       "files without it") from None


def _unsupported_storage(path: Path, storage: str) -> BagError:
    return BagError(
        f"{path}: recorded with storage plugin {storage!r}, which rosbags cannot read (it reads mcap and "
        f"sqlite3). Convert it on a ROS machine: ros2 bag convert -i {path} -o out.yaml, with out.yaml "
        f"holding 'output_bags: [{{uri: {path.name}_mcap, storage_id: mcap}}]'")


def open_bag(path: str | Path) -> BagSource:
    """A rosbag2 folder, or one of its .mcap / .db3 files, ready to read."""
    from rosbags.rosbag2 import Reader, ReaderError

    path = Path(path).expanduser()
    if not path.exists():
        raise BagError(f"{path}: no such bag (give a rosbag2 folder or its .mcap / .db3 file)")
    notes: list[str] = []
    metadata = path / "metadata.yaml"
    if path.is_dir() and metadata.is_file():
        storage = _storage_identifier(metadata)
        if storage not in STORAGES.values():
            raise _unsupported_storage(path, storage)
        reader = Reader(path)
        try:
            reader.open()
            return BagSource(path, [_Storage(str(path), reader)], notes)
        except (ReaderError, OSError, ValueError) as exc:
            notes.append(f"{path}: {exc} - its files are read one by one")
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix in STORAGES), key=_natural_key)
        if not files:
            found = sorted(p.name for p in path.iterdir())
            raise BagError(f"{path}: no metadata.yaml and no .mcap or .db3 file (found {found}); give a rosbag2 "
                           "folder recorded with the mcap or sqlite3 storage plugin")
        if not metadata.is_file():
            notes.append(f"{path}: no metadata.yaml (a recording that did not close?) - its files are read one "
                         "by one")
    else:
        files = [path]
    return BagSource(path, [_open_file(f, notes) for f in files], notes)


def _open_file(path: Path, notes: list[str]) -> _Storage:
    from rosbags.rosbag2 import Reader, ReaderError

    if path.suffix == ".bag":
        raise BagError(f"{path}: a ROS 1 bag; convert it first: rosbags-convert --src {path} --dst <folder>")
    if path.suffix not in STORAGES:
        raise _unsupported_storage(path, path.suffix)
    reader = Reader(path)
    try:
        reader.open()
        return _Storage(str(path), reader)
    except (ReaderError, OSError, ValueError, IndexError) as exc:
        if path.suffix != ".mcap":
            raise BagError(f"{path}: unreadable {STORAGES[path.suffix]} file: {exc}") from None
        reason = exc
    try:
        unfinished = _open_unfinished_mcap(path)
    except (ReaderError, OSError, ValueError, IndexError) as exc:
        raise BagError(f"{path}: unreadable MCAP file ({reason}; scanning its records: {exc})") from None
    kept = unfinished.data_end
    notes.append(f"{path}: no MCAP summary or footer ({reason}): a recording killed mid-write? Read its "
                 f"{unfinished.statistics.message_count} messages up to byte {kept} of {path.stat().st_size}; "
                 "the rest is lost")
    return _Storage(str(path), unfinished, unfinished=True)
