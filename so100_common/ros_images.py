"""sensor_msgs/Image -> RGB for the ROS node shells: cv_bridge when it is installed (a full ROS
install), else the numpy conversion of `so100_common.images` (same pixels; test_policy_core)."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from so100_common.images import check_encoding, image_msg_to_rgb


@lru_cache(maxsize=1)
def _bridge() -> Any:
    try:
        from cv_bridge import CvBridge  # type: ignore[import-not-found]
    except ImportError:  # pip-only machines have no cv_bridge
        return None
    return CvBridge()


def ros_image_to_rgb(msg: Any) -> np.ndarray:
    """sensor_msgs/Image -> H x W x 3 uint8 RGB; ImageConversionError when it cannot be read."""
    bridge = _bridge()
    if bridge is None:
        return image_msg_to_rgb(msg)
    check_encoding(msg)  # the same refusal text on both paths
    return np.ascontiguousarray(bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8"))
