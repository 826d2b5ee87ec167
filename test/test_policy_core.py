"""Plain-Python core of the policy node: image conversion, observations, splicing, safety, runner."""
from __future__ import annotations

import threading
import types

import numpy as np
import pytest

from so100_description.calibration import JointUnitConverter, nominal_calibration
from so100_description.joints import JOINT_NAMES, joint_limits
from vla_policy_node.backends.base import PolicyBackend, PolicyInput, PolicySpec
from vla_policy_node.chunking import ChunkScheduler
from so100_common.images import (ImageConversionError, compressed_msg_to_rgb, image_msg_to_rgb,
                                              rgb_to_compressed_bytes, rgb_to_image_fields)
from so100_common.images import fit_image
from vla_policy_node.observation import JointStateError, ObservationBuilder, ObservationUnavailable
from vla_policy_node.runner import PolicyRunner
from vla_policy_node.safety import InvalidPolicyOutput, JointLimiter, LimitArrays, validate_chunk

RNG = np.random.default_rng(0)


def _msg(**fields):
    return types.SimpleNamespace(**fields)


# -- images ---------------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8"])
def test_image_round_trip_numpy_path(encoding):
    rgb = RNG.integers(0, 255, size=(5, 7, 3), dtype=np.uint8)
    out = image_msg_to_rgb(_msg(**rgb_to_image_fields(rgb, encoding)), )
    assert out.shape == (5, 7, 3) and out.dtype == np.uint8
    if encoding == "mono8":
        grey = (rgb.astype(int).sum(axis=2) // 3).astype(np.uint8)
        assert np.array_equal(out, np.repeat(grey[:, :, None], 3, axis=2))
    else:
        assert np.array_equal(out, rgb)


def test_image_rows_with_padding_and_bgra():
    rgb = RNG.integers(0, 255, size=(3, 4, 3), dtype=np.uint8)
    bgra = np.concatenate([rgb[:, :, ::-1], np.full((3, 4, 1), 9, np.uint8)], axis=2)
    padded = np.zeros((3, 4 * 4 + 3), np.uint8)  # 3 bytes of row padding
    padded[:, :16] = bgra.reshape(3, 16)
    msg = _msg(height=3, width=4, encoding="bgra8", step=19, data=padded.tobytes(), is_bigendian=0)
    assert np.array_equal(image_msg_to_rgb(msg, ), rgb)


@pytest.mark.parametrize("fields,match", [
    (dict(height=2, width=2, encoding="yuv422", step=4, data=bytes(8)), "unsupported image encoding"),
    (dict(height=2, width=2, encoding="rgb8", step=6, data=bytes(5)), "data has 5 bytes"),
    (dict(height=2, width=2, encoding="rgb8", step=3, data=bytes(12)), "step 3"),
    (dict(height=0, width=2, encoding="rgb8", step=6, data=b""), "no pixels"),
])
def test_bad_images_are_rejected_with_reason(fields, match):
    with pytest.raises(ImageConversionError, match=match):
        image_msg_to_rgb(_msg(**fields))


def test_cv_bridge_gives_same_pixels_as_numpy():
    pytest.importorskip("cv_bridge", reason="cv_bridge is not installed (pip-only machine)")
    from sensor_msgs.msg import Image

    from so100_common.ros_images import ros_image_to_rgb

    rgb = RNG.integers(0, 255, size=(6, 8, 3), dtype=np.uint8)
    for enc in ("rgb8", "bgr8", "mono8"):
        msg = Image(**rgb_to_image_fields(rgb, enc))
        assert np.array_equal(ros_image_to_rgb(msg), image_msg_to_rgb(msg))


def test_compressed_png_is_lossless_and_garbage_fails():
    rgb = RNG.integers(0, 255, size=(6, 8, 3), dtype=np.uint8)
    out = compressed_msg_to_rgb(_msg(format="png", data=rgb_to_compressed_bytes(rgb, "png")))
    assert np.array_equal(out, rgb)
    with pytest.raises(ImageConversionError, match="could not be decoded"):
        compressed_msg_to_rgb(_msg(format="jpeg", data=b"not a jpeg"))


def test_fit_image_resize_and_centre_crop():
    img = np.zeros((480, 640, 3), np.uint8)
    img[:, :80] = 255  # a white band at the far left, cut away by a 1:1 centre crop
    assert fit_image(img, (120, 160)).shape == (120, 160, 3)
    cropped = fit_image(img, (100, 100), "crop")
    assert cropped.shape == (100, 100, 3) and cropped.max() == 0
    assert fit_image(img, None) is img


# -- observations ---------------------------------------------------------------------------
def _builder(**kw):
    conv = JointUnitConverter(nominal_calibration(), "degrees")
    shapes = {"observation.images.front": (3, 24, 32)}
    return ObservationBuilder(shapes, conv, max_image_age=0.5, max_state_age=0.5, **kw)


def test_observation_state_in_lerobot_units_by_name():
    b = _builder(task="pick")
    names = ["gripper", "extra_joint"] + list(reversed(JOINT_NAMES[:5]))
    pos = {"shoulder_pan": 0.5, "shoulder_lift": -0.25, "elbow_flex": 0.1, "wrist_flex": 0.0, "wrist_roll": 1.0,
           "gripper": joint_limits()["gripper"].upper, "extra_joint": 9.0}
    b.update_joint_state(names, [pos[n] for n in names], received=10.0)
    b.update_image("observation.images.front", np.zeros((48, 64, 3), np.uint8), 10.0, 1.0)
    obs = b.build(10.1)
    expected = [np.degrees(pos[j]) for j in JOINT_NAMES[:5]] + [100.0]
    assert obs.policy_input.state == pytest.approx(expected, abs=1e-4)
    assert obs.policy_input.images["observation.images.front"].shape == (24, 32, 3)
    assert obs.policy_input.task == "pick"


def test_observation_rejects_missing_joints_nan_and_staleness():
    b = _builder()
    with pytest.raises(JointStateError, match="lacks joint"):
        b.update_joint_state(JOINT_NAMES[:5], [0.0] * 5, 0.0)
    with pytest.raises(JointStateError, match="non-finite"):
        b.update_joint_state(JOINT_NAMES, [0.0] * 5 + [float("nan")], 0.0)
    with pytest.raises(ObservationUnavailable, match="no /joint_states"):
        b.build(0.0)
    b.update_joint_state(JOINT_NAMES, [0.0] * 6, 0.0)
    with pytest.raises(ObservationUnavailable, match="no image"):
        b.build(0.1)
    b.update_image("observation.images.front", np.zeros((24, 32, 3), np.uint8), 0.0, 0.0)
    b.build(0.4)
    with pytest.raises(ObservationUnavailable, match="stale"):
        b.build(0.6)
    with pytest.raises(KeyError):
        b.update_image("observation.images.side", np.zeros((2, 2, 3), np.uint8), 0.0, 0.0)


# -- chunk scheduling -----------------------------------------------------------------------
DT = 1.0 / 30


def _sine_chunk(t0, n=30, phase=0.0, offset=0.0, joints=6):
    t = t0 + DT * np.arange(n)
    return np.stack([0.3 * np.sin(2 * np.pi * 0.5 * t + phase + j) + offset for j in range(joints)], axis=1)


def test_first_chunk_starts_at_current_position_and_drops_past_actions():
    s = ChunkScheduler(6, DT, lead_time=0.0)
    current = np.full(6, 0.2)
    seg = s.integrate(_sine_chunk(0.0), obs_time=0.0, now=0.1, current=current)
    assert seg.dropped == 3  # actions for t = 0, 1/30, 2/30 < 0.1 are gone
    assert seg.times[0] == pytest.approx(0.1)
    # blend weight 0 at the first kept knot: the plan starts where the arm is
    assert seg.positions[0] == pytest.approx(current)
    assert len(seg.positions) == 27


def test_chunk_entirely_in_the_past_is_dropped():
    s = ChunkScheduler(6, DT, lead_time=0.0)
    s.integrate(_sine_chunk(0.0, n=10), 0.0, 0.0, current=np.zeros(6))
    assert s.integrate(_sine_chunk(0.0, n=10), obs_time=0.0, now=1.0) is None
    assert s.stats.stale_chunks == 1


def test_splice_is_continuous_and_converges_to_new_chunk():
    s = ChunkScheduler(6, DT, lead_time=0.0, blend_steps=4)
    first = s.integrate(_sine_chunk(0.0), 0.0, 0.0, current=_sine_chunk(0.0)[0])
    old_plan_t, old_plan_p = s.plan_arrays()
    new_chunk = _sine_chunk(0.5, offset=0.05)  # the model changed its mind by 0.05 rad
    seg = s.integrate(new_chunk, obs_time=0.5, now=0.6)
    k = int(np.argmin(np.abs(old_plan_t - seg.times[0])))
    assert seg.positions[0] == pytest.approx(old_plan_p[k])  # no jump at the splice
    assert seg.positions[-1] == pytest.approx(new_chunk[-1])  # then the new chunk rules
    times, plan = s.plan_arrays()
    acc = np.abs(np.diff(plan, 2, axis=0)) / DT**2
    naive = np.vstack([old_plan_p[:k], new_chunk[int(round((seg.times[0] - 0.5) / DT)):]])
    naive_acc = np.abs(np.diff(naive, 2, axis=0)) / DT**2
    assert acc.max() < 0.2 * naive_acc.max()
    assert first is not None


def test_needs_inference_follows_threshold_and_latency():
    s = ChunkScheduler(6, DT, trigger_fraction=0.5, lead_time=0.0)
    assert s.needs_inference(0.0)  # no plan yet
    s.integrate(_sine_chunk(0.0, n=30), 0.0, 0.0, current=np.zeros(6))  # plan ends at 29/30 s
    assert not s.needs_inference(0.2)
    assert s.needs_inference(0.5)  # < half a chunk left
    s.record_latency(0.7)  # slow model: trigger earlier so the arm never waits
    assert s.needs_inference(0.2)


# -- safety ---------------------------------------------------------------------------------
def test_validate_chunk_rejects_nan_shape_and_empty():
    with pytest.raises(InvalidPolicyOutput, match="non-finite"):
        validate_chunk(np.array([[0.0] * 5 + [np.nan]]), 6)
    with pytest.raises(InvalidPolicyOutput, match="shape"):
        validate_chunk(np.zeros((4, 5)), 6)
    with pytest.raises(InvalidPolicyOutput):
        validate_chunk(np.zeros((0, 6)), 6)
    with pytest.raises(InvalidPolicyOutput, match="not numeric"):
        validate_chunk([["a"] * 6], 6)
    assert validate_chunk(np.zeros((1, 3, 6)), 6).shape == (3, 6)


def test_limiter_clamps_and_bounds_velocity_and_acceleration():
    lim = LimitArrays.for_joints(JOINT_NAMES)
    limiter = JointLimiter(lim)
    targets = np.tile(np.array([5.0, -5.0, 0.0, 0.0, 0.0, 3.0]), (60, 1))  # far outside the limits
    pos, _ = limiter(targets, np.zeros(6), np.zeros(6), DT)
    assert np.all(pos <= lim.upper + 1e-12) and np.all(pos >= lim.lower - 1e-12)
    path = np.vstack([np.zeros(6), np.zeros(6), pos])
    vel = np.diff(path, axis=0) / DT
    acc = np.diff(vel, axis=0) / DT
    assert np.all(np.abs(vel) <= lim.velocity + 1e-9)
    assert np.all(np.abs(acc) <= lim.acceleration + 1e-6)
    assert pos[-1, 0] == pytest.approx(lim.upper[0], abs=1e-6)  # it does get there


# -- runner ---------------------------------------------------------------------------------
class FakeBackend(PolicyBackend):
    def __init__(self, outputs):
        self.spec = PolicySpec("fake", 6, 6, {"observation.images.front": (3, 24, 32)}, 10)
        self.outputs = list(outputs)
        self.calls = 0

    def predict_chunk(self, obs: PolicyInput):
        self.calls += 1
        return self.outputs.pop(0) if self.outputs else np.zeros((10, 6))


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def _runner(outputs):
    clock = Clock()
    b = _builder()
    published, holds = [], []
    conv = b.converter
    mapper = lambda chunk, cur: np.array([[conv.lerobot_to_radians(j, v) for j, v in zip(JOINT_NAMES, row)]
                                          for row in chunk])
    sched = ChunkScheduler(6, DT, lead_time=0.0, limiter=JointLimiter(LimitArrays.for_joints(JOINT_NAMES)))
    r = PolicyRunner(FakeBackend(outputs), b, sched, mapper, published.append, holds.append, clock, 6)
    b.update_joint_state(JOINT_NAMES, [0.1] * 5 + [0.5], clock.t)
    b.update_image("observation.images.front", np.zeros((24, 32, 3), np.uint8), clock.t, 0.0)
    return r, clock, published, holds


@pytest.mark.parametrize("bad,match", [(np.full((10, 6), np.nan), "non-finite"), (np.zeros((10, 4)), "shape")])
def test_runner_holds_and_disables_on_bad_policy_output(bad, match):
    r, clock, published, holds = _runner([np.zeros((10, 6)), bad])
    r.enable(True)
    assert r.step() and len(published) == 1
    clock.t += 0.3
    r.builder.update_image("observation.images.front", np.zeros((24, 32, 3), np.uint8), clock.t, 0.0)
    r.builder.update_joint_state(JOINT_NAMES, [0.1] * 5 + [0.5], clock.t)
    assert not r.step()
    assert match in r.status.fault and not r.status.enabled
    assert len(published) == 1 and len(holds) == 1
    held = holds[0]
    assert np.all(np.isfinite(held))
    clock.t += 0.1
    assert not r.step()  # disabled: nothing runs until enabled again
    r.enable(True)
    assert r.status.fault == ""


def test_runner_never_infers_twice_on_one_frame_and_stop_holds():
    r, clock, published, holds = _runner([])
    r.enable(True)
    assert r.step()
    clock.t += 0.31  # chunk of 10 at 30 Hz is almost over: due again
    assert not r.step() and r.backend.calls == 1  # but no new frame yet
    r.builder.update_image("observation.images.front", np.zeros((24, 32, 3), np.uint8), clock.t, 0.0)
    r.builder.update_joint_state(JOINT_NAMES, [0.1] * 5 + [0.5], clock.t)
    assert r.step() and r.backend.calls == 2
    r.enable(False)
    assert len(holds) == 1 and not r.status.enabled
    r.estop()
    assert r.status.estopped and len(holds) == 2


def test_runner_counts_each_stall_once_and_names_images():
    r, clock, published, holds = _runner([])
    r.enable(True)
    assert r.step()
    for _ in range(3):  # due, and the frame keeps ageing: one stall, however many ticks it lasts
        clock.t += 1.0
        r.builder.update_joint_state(JOINT_NAMES, [0.1] * 5 + [0.5], clock.t)
        assert not r.step()
    assert "image" in r.status.waiting and (r.status.stalls, r.status.image_stalls) == (1, 1)
    r.builder.update_image("observation.images.front", np.zeros((24, 32, 3), np.uint8), clock.t, 0.0)
    assert r.step() and r.status.waiting == ""
    clock.t += 5.0  # now the joint state is the stale input
    r.builder.update_image("observation.images.front", np.zeros((24, 32, 3), np.uint8), clock.t, 0.0)
    assert not r.step()
    assert "joint state" in r.status.waiting and (r.status.stalls, r.status.image_stalls) == (2, 1)


def test_runner_drops_result_of_inference_overtaken_by_stop():
    gate = threading.Event()

    class Slow(FakeBackend):
        def predict_chunk(self, obs):
            gate.wait(5)
            return np.zeros((10, 6))

    r, clock, published, holds = _runner([])
    r.backend = Slow([])
    r.enable(True)
    worker = threading.Thread(target=r.step)
    worker.start()
    r.enable(False)  # stop while the model is thinking
    gate.set()
    worker.join(5)
    assert published == []
