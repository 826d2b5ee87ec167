"""Client of LeRobot's async-inference PolicyServer (lerobot.async_inference.policy_server).

A GPU box runs `python -m lerobot.async_inference.policy_server --host=0.0.0.0 --port=8080`;
this backend speaks its gRPC protocol as LeRobot's own RobotClient does: Ready, then
SendPolicyInstructions (a pickled RemotePolicyConfig naming the checkpoint on the server), then
per inference SendObservations (a pickled TimedObservation in the robot's raw form:
`<motor>.pos` floats, camera frames H x W x 3 uint8 keyed by camera name, `task`) followed by
GetActions (a pickled list of TimedAction). The server un-normalises, so actions come back in
LeRobot units like the local backend's.

Differences from RobotClient, on purpose: every observation is sent with must_go=True, so the
server's joint-space similarity filter never skips a fresh observation; chunk timing and
splicing are done by this node's scheduler, not by the server's timestamps.

Security: the protocol unpickles data on both ends (LeRobot's design). Only connect to a server
you trust, on a network you trust.
"""
from __future__ import annotations

import pickle  # nosec - LeRobot's protocol
import threading
import time
from pathlib import Path

import numpy as np

from so100_description.joints import JOINT_NAMES

from .base import (IMAGE_PREFIX, BackendError, CheckpointError, PolicyBackend, PolicyInput, PolicySpec,
                   read_spec_from_config)


class RemotePolicyServerBackend(PolicyBackend):
    def __init__(self, server_address: str, policy_path: str, policy_type: str = "",
                 device: str = "cpu", actions_per_chunk: int = 0, cameras: tuple[str, ...] = (),
                 camera_shape: tuple[int, int] = (480, 640), joints: tuple[str, ...] = JOINT_NAMES,
                 timeout: float = 30.0, connect_timeout: float = 10.0):
        try:
            import grpc
            from lerobot.async_inference.helpers import RemotePolicyConfig, TimedObservation
            from lerobot.transport import services_pb2, services_pb2_grpc
            from lerobot.transport.utils import grpc_channel_options, send_bytes_in_chunks
            from lerobot.utils.feature_utils import hw_to_dataset_features
        except ImportError as exc:
            # LeRobot's protocol pickles torch tensors: torch and lerobot are needed on this side too.
            raise CheckpointError(f"the remote backend needs torch and lerobot with grpcio and protobuf: {exc} "
                                  "(pip install 'so100_vla[remote]')") from None
        self._grpc, self._pb2 = grpc, services_pb2
        self._TimedObservation = TimedObservation
        self._send_chunks = send_bytes_in_chunks
        self.joints = tuple(joints)
        self.timeout = float(timeout)
        local = Path(policy_path).expanduser()
        if local.is_dir():  # the checkpoint is also here: validate it like the local backend does
            self.spec = read_spec_from_config(local)
        else:  # only the server has it (e.g. a hub id): trust the declared cameras
            if not policy_type:
                raise CheckpointError(f"policy {policy_path!r} is not a local folder: set remote_policy_type")
            self.spec = PolicySpec(policy_type=policy_type, state_dim=len(self.joints),
                                   action_dim=len(self.joints),
                                   image_shapes={IMAGE_PREFIX + c: None for c in cameras},
                                   chunk_size=int(actions_per_chunk) or 50, source=str(policy_path))
        policy_type = policy_type or self.spec.policy_type
        # raw camera frames are sent at the policy's size when known (the server resizes anyway)
        hw_features: dict = {f"{j}.pos": float for j in self.joints}
        for key in self.spec.image_shapes:
            hw = self.spec.image_hw(key) or tuple(camera_shape)
            hw_features[key[len(IMAGE_PREFIX):]] = (int(hw[0]), int(hw[1]), 3)
        features = hw_to_dataset_features(hw_features, "observation", use_video=False)
        self._config = RemotePolicyConfig(
            policy_type=policy_type, pretrained_name_or_path=str(policy_path), lerobot_features=features,
            actions_per_chunk=int(actions_per_chunk) or self.spec.chunk_size, device=device)
        self.address = server_address
        self._channel = grpc.insecure_channel(server_address, grpc_channel_options())
        self._stub = services_pb2_grpc.AsyncInferenceStub(self._channel)
        self._lock = threading.Lock()
        self._timestep = 0
        try:
            grpc.channel_ready_future(self._channel).result(timeout=connect_timeout)
            self._handshake()
        except grpc.FutureTimeoutError:
            self._channel.close()
            raise CheckpointError(f"policy server at {server_address} not reachable "
                                  f"within {connect_timeout} s") from None
        except grpc.RpcError as exc:
            self._channel.close()
            raise CheckpointError(f"policy server at {server_address} refused the policy "
                                  f"{policy_path!r}: {exc.code().name} {exc.details()}") from None

    def _handshake(self) -> None:
        self._stub.Ready(self._pb2.Empty(), timeout=self.timeout)
        # the server loads the policy inside this call; a long timeout covers big checkpoints
        self._stub.SendPolicyInstructions(self._pb2.PolicySetup(data=pickle.dumps(self._config)),
                                          timeout=max(self.timeout, 120.0))

    def raw_observation(self, obs: PolicyInput) -> dict:
        state = np.asarray(obs.state, dtype=np.float32).reshape(-1)
        if state.shape[0] != len(self.joints):
            raise BackendError(f"state has {state.shape[0]} values for joints {list(self.joints)}")
        raw: dict = {f"{j}.pos": float(v) for j, v in zip(self.joints, state)}
        for key, rgb in obs.images.items():
            raw[key[len(IMAGE_PREFIX):]] = np.ascontiguousarray(rgb)
        raw["task"] = obs.task or ""
        return raw

    def predict_chunk(self, obs: PolicyInput) -> np.ndarray:
        grpc = self._grpc
        with self._lock:
            self._timestep += 1
            timed = self._TimedObservation(timestamp=time.time(), timestep=self._timestep,
                                           observation=self.raw_observation(obs), must_go=True)
            try:
                payload = pickle.dumps(timed)
                self._stub.SendObservations(self._send_chunks(payload, self._pb2.Observation),
                                            timeout=self.timeout)
                reply = self._stub.GetActions(self._pb2.Empty(), timeout=self.timeout)
            except grpc.RpcError as exc:
                raise BackendError(f"policy server {self.address}: {exc.code().name} {exc.details()}") from None
        if not reply.data:
            raise BackendError(f"policy server {self.address} returned no actions (see its log)")
        try:
            timed_actions = pickle.loads(reply.data)  # nosec - LeRobot's protocol
            chunk = np.stack([np.asarray(a.get_action().float().cpu().numpy()) for a in timed_actions])
        except Exception as exc:
            raise BackendError(f"policy server {self.address} sent an unreadable chunk: {exc}") from None
        return chunk

    def reset(self) -> None:
        with self._lock:  # Ready flushes the server's queue and predicted-timestep memory
            try:
                self._stub.Ready(self._pb2.Empty(), timeout=self.timeout)
            except self._grpc.RpcError as exc:
                raise BackendError(f"policy server {self.address}: {exc.code().name} {exc.details()}") from None

    def close(self) -> None:
        self._channel.close()
