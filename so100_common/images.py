"""sensor_msgs/Image and CompressedImage <-> numpy, without rclpy (messages are duck-typed).

Semantics follow cv_bridge's `imgmsg_to_cv2(msg, desired_encoding="rgb8")`: the result is an
H x W x 3 uint8 RGB array; rows honour `step` (padding), `is_bigendian` is irrelevant for
8-bit encodings. This module is plain numpy/OpenCV (no ROS import): the ROS layer's
`so100_common.ros_images` prefers cv_bridge when it is importable; tests check both give the
same pixels.
"""
from __future__ import annotations

from typing import Any

import numpy as np

SUPPORTED_ENCODINGS = ("rgb8", "bgr8", "mono8", "rgba8", "bgra8")
_CHANNELS = {"rgb8": 3, "bgr8": 3, "mono8": 1, "rgba8": 4, "bgra8": 4}


class ImageConversionError(ValueError):
    """A message that cannot be turned into an RGB image; the text says why."""


def check_encoding(msg: Any) -> str:
    """The message's encoding, lower case; ImageConversionError when it is not supported."""
    encoding = str(msg.encoding).lower()
    if encoding not in _CHANNELS:
        raise ImageConversionError(
            f"unsupported image encoding {msg.encoding!r}; expected one of {SUPPORTED_ENCODINGS}")
    return encoding


def image_msg_to_rgb(msg: Any) -> np.ndarray:
    """sensor_msgs/Image -> H x W x 3 uint8 RGB (a copy the caller may keep)."""
    encoding = check_encoding(msg)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    channels = _CHANNELS[encoding]
    if height <= 0 or width <= 0:
        raise ImageConversionError(f"image has no pixels ({width}x{height})")
    if step < width * channels:
        raise ImageConversionError(f"image step {step} is smaller than width*channels {width * channels}")
    data = msg.data
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.view(np.uint8).reshape(-1)
    if buffer.size < step * height:
        raise ImageConversionError(
            f"image data has {buffer.size} bytes; {height} rows of step {step} need {step * height}")
    rows = buffer[: step * height].reshape(height, step)[:, : width * channels]
    pixels = rows.reshape(height, width, channels)
    if encoding == "rgb8":
        return pixels.copy()
    if encoding == "bgr8":
        return pixels[:, :, ::-1].copy()
    if encoding == "rgba8":
        return pixels[:, :, :3].copy()
    if encoding == "bgra8":
        return pixels[:, :, 2::-1].copy()
    return np.repeat(pixels, 3, axis=2)  # mono8


def compressed_msg_to_rgb(msg: Any) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg/png) -> H x W x 3 uint8 RGB, decoded with OpenCV."""
    import cv2

    buffer = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if buffer.size == 0:
        raise ImageConversionError("compressed image has no data")
    decoded = cv2.imdecode(buffer, cv2.IMREAD_COLOR)  # BGR
    if decoded is None:
        raise ImageConversionError(f"compressed image (format {msg.format!r}) could not be decoded")
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def rgb_to_image_fields(rgb: np.ndarray, encoding: str = "rgb8") -> dict[str, Any]:
    """Field values of a sensor_msgs/Image holding `rgb` (H x W x 3 uint8) in `encoding`.

    Used by publishers (fake cameras, the sim) as `Image(**fields)` plus a header."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageConversionError(f"expected an H x W x 3 uint8 array, got {rgb.dtype} {rgb.shape}")
    if encoding == "rgb8":
        pixels = rgb
    elif encoding == "bgr8":
        pixels = rgb[:, :, ::-1]
    elif encoding == "mono8":
        pixels = (rgb.astype(np.uint16).sum(axis=2) // 3).astype(np.uint8)[:, :, None]
    else:
        raise ImageConversionError(f"cannot encode {encoding!r}; use rgb8, bgr8 or mono8")
    height, width, channels = pixels.shape
    return {"height": height, "width": width, "encoding": encoding, "is_bigendian": 0,
            "step": width * channels, "data": np.ascontiguousarray(pixels).tobytes()}


def rgb_to_compressed_bytes(rgb: np.ndarray, fmt: str = "jpeg", quality: int = 95) -> bytes:
    import cv2

    ext = ".png" if fmt == "png" else ".jpg"
    params = [] if fmt == "png" else [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    ok, encoded = cv2.imencode(ext, cv2.cvtColor(np.asarray(rgb), cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ImageConversionError(f"OpenCV could not encode {fmt}")
    return encoded.tobytes()


RESIZE_MODES = ("resize", "crop")


def fit_image(rgb: np.ndarray, hw: tuple[int, int] | None, mode: str = "resize") -> np.ndarray:
    """Bring an H x W x 3 uint8 frame to `hw` = (height, width); None keeps it as it is."""
    if hw is None or rgb.shape[:2] == tuple(hw):
        return rgb
    import cv2

    height, width = hw
    if mode == "crop":
        src_h, src_w = rgb.shape[:2]
        target_ratio = width / height
        if src_w / src_h > target_ratio:  # too wide: crop columns
            new_w = max(1, int(round(src_h * target_ratio)))
            x0 = (src_w - new_w) // 2
            rgb = rgb[:, x0:x0 + new_w]
        else:
            new_h = max(1, int(round(src_w / target_ratio)))
            y0 = (src_h - new_h) // 2
            rgb = rgb[y0:y0 + new_h]
    elif mode != "resize":
        raise ValueError(f"unknown resize mode {mode!r}; expected one of {RESIZE_MODES}")
    shrinking = rgb.shape[0] > height or rgb.shape[1] > width
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(rgb), (width, height), interpolation=interp)
