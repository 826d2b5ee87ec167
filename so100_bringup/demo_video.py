"""Video files of the tools: `VideoWriter` (mp4, or a gif without ffmpeg) and the demo's
`DemoVideo`: the front and wrist cameras side by side, scaled up to be readable, with the
instruction, the sim time and success drawn on them.

The cameras render at the policy's resolution (320x240 by default), which is too small to
read on a screen; only the video is scaled, never what the policy sees.
"""
from __future__ import annotations

import queue
import threading
from pathlib import Path

import numpy as np

VIDEO_HEIGHT_PX = 480  # each camera is scaled to this height in the demo video
_WHITE = (255, 255, 255)
_SUCCESS_GREEN = (40, 170, 60)  # RGB: the frames are RGB, OpenCV only paints numbers
_NO_IMAGE_GREY = 64


class VideoWriter:
    """mp4 through imageio-ffmpeg; a gif at half size when ffmpeg is unavailable."""

    def __init__(self, stem: Path, fps: float):
        import imageio.v2 as imageio

        self._frames_gif: list[np.ndarray] = []
        try:
            import imageio_ffmpeg  # noqa: F401

            self.path = stem.with_suffix(".mp4")
            self._writer = imageio.get_writer(self.path, fps=fps, codec="libx264", quality=7,
                                              macro_block_size=1, ffmpeg_log_level="error")
        except Exception:  # noqa: BLE001 - no ffmpeg: gif
            self.path = stem.with_suffix(".gif")
            self._writer = None
        self._fps = fps

    def add(self, frame: np.ndarray) -> None:
        if self._writer is not None:
            self._writer.append_data(frame)
        else:
            self._frames_gif.append(frame[::2, ::2].copy())

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        elif self._frames_gif:
            import imageio.v2 as imageio

            imageio.mimsave(self.path, self._frames_gif, duration=1.0 / self._fps, loop=0)


def scale_to_height(rgb: np.ndarray, height: int) -> np.ndarray:
    """`rgb` resized to `height` rows, aspect kept, width rounded to even (H.264's 4:2:0
    chroma needs even sizes)."""
    import cv2

    h, w = rgb.shape[:2]
    width = max(2, 2 * round(w * height / h / 2))
    if (h, w) == (height, width):
        return rgb
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)


def _put_text_fitting(img: np.ndarray, text: str, left: int, baseline_y: int, max_width: int,
                      scale: float, thickness: int, color=_WHITE) -> None:
    """cv2.putText, shrunk (then cut with '...') until it fits in `max_width` pixels."""
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    min_scale = scale * 0.6
    while cv2.getTextSize(text, font, scale, thickness)[0][0] > max_width and scale > min_scale:
        scale *= 0.9
    while len(text) > 4 and cv2.getTextSize(text, font, scale, thickness)[0][0] > max_width:
        text = text[:-4] + "..."
    cv2.putText(img, text, (left, baseline_y), font, scale, color, thickness, cv2.LINE_AA)


def _darken(img: np.ndarray, top: int, bottom: int, left: int = 0, right: int | None = None) -> None:
    """Halve the brightness of a box, so white text on it reads on any scene."""
    img[top:bottom, left:right] //= 2


def compose_frame(front: np.ndarray, wrist: np.ndarray | None, instruction: str, sim_time_s: float,
                  success_at_s: float | None, height: int = VIDEO_HEIGHT_PX) -> np.ndarray:
    """One demo video frame: front | wrist (each `height` px high; a grey panel until the
    first wrist frame), the instruction and the sim time on a band at the top, camera names at
    the bottom, and a green SUCCESS banner once the task succeeded (`success_at_s`: sim time
    since the episode started, None while it has not)."""
    import cv2

    left = scale_to_height(front, height)
    if wrist is None:
        right = np.full_like(left, _NO_IMAGE_GREY)
    else:
        right = scale_to_height(wrist, height)
    img = np.ascontiguousarray(np.concatenate([left, right], axis=1))
    width = img.shape[1]
    unit = height / VIDEO_HEIGHT_PX  # text sizes follow the video height
    thick = max(1, round(2 * unit))
    pad = round(10 * unit)

    band = round(40 * unit)
    _darken(img, 0, band)
    clock = f"t = {sim_time_s:.1f} s"
    clock_w = cv2.getTextSize(clock, cv2.FONT_HERSHEY_SIMPLEX, 0.8 * unit, thick)[0][0]
    _put_text_fitting(img, instruction, pad, band - round(12 * unit), width - clock_w - 4 * pad, 0.8 * unit, thick)
    cv2.putText(img, clock, (width - clock_w - pad, band - round(12 * unit)), cv2.FONT_HERSHEY_SIMPLEX,
                0.8 * unit, _WHITE, thick, cv2.LINE_AA)

    for name, x0 in (("front", 0), ("wrist" if wrist is not None else "wrist: no image yet", left.shape[1])):
        (text_w, text_h), _ = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, 0.7 * unit, thick)
        _darken(img, height - text_h - 2 * pad, height, x0, x0 + text_w + 2 * pad)
        cv2.putText(img, name, (x0 + pad, height - pad), cv2.FONT_HERSHEY_SIMPLEX, 0.7 * unit, _WHITE, thick,
                    cv2.LINE_AA)

    if success_at_s is not None:
        # under the top band: the cube on the target, what shows the success, stays visible
        top, bottom = band, band + round(60 * unit)
        img[top:bottom] = _SUCCESS_GREEN
        _put_text_fitting(img, f"SUCCESS at t = {success_at_s:.1f} s", 3 * pad, bottom - round(15 * unit),
                          width - 6 * pad, 1.4 * unit, max(2, round(3 * unit)))
    return img


class DemoVideo:
    """The demo's video file (`<stem>.mp4`, `.gif` without ffmpeg). The cameras publish
    separately: each front frame is written beside the latest wrist frame. Frames are composed
    and encoded on a thread of their own, so the caller (the demo's recorder, which also
    measures camera rates and latencies) only queues them."""

    def __init__(self, stem: Path, fps: float, instruction: str, height: int = VIDEO_HEIGHT_PX):
        self._writer = VideoWriter(stem, fps)
        self.path = self._writer.path
        self.instruction = instruction
        self.height = height
        self._wrist: np.ndarray | None = None
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._write_frames, name="demo_video", daemon=True)
        self._thread.start()

    def set_wrist(self, rgb: np.ndarray) -> None:
        self._wrist = rgb

    def add_front(self, rgb: np.ndarray, sim_time_s: float, success_at_s: float | None) -> None:
        self._queue.put((rgb, self._wrist, sim_time_s, success_at_s))

    def _write_frames(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue  # keep draining: close() reports the error
            front, wrist, sim_time_s, success_at_s = item
            try:
                self._writer.add(compose_frame(front, wrist, self.instruction, sim_time_s, success_at_s,
                                               self.height))
            except Exception as exc:  # noqa: BLE001 - raised again by close()
                self._error = exc

    def close(self) -> None:
        """Write the queued frames and the file; raises what went wrong while writing."""
        self._queue.put(None)
        self._thread.join()
        self._writer.close()
        if self._error is not None:
            raise RuntimeError(f"writing {self.path} failed: {self._error}") from self._error
