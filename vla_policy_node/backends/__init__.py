"""Policy backends: a local LeRobot checkpoint, or LeRobot's async-inference PolicyServer."""
from .base import (BackendError, CheckpointError, PolicyBackend, PolicyInput, PolicySpec,
                   check_compatibility, read_spec_from_config)

__all__ = ["BackendError", "CheckpointError", "PolicyBackend", "PolicyInput", "PolicySpec",
           "check_compatibility", "read_spec_from_config", "make_backend"]


def make_backend(kind: str, **kwargs) -> PolicyBackend:
    """'local' -> LocalLeRobotBackend(path, device, dtype, ...); 'remote' -> RemotePolicyServerBackend(...)."""
    if kind == "local":
        from .local import LocalLeRobotBackend
        return LocalLeRobotBackend(**kwargs)
    if kind == "remote":
        from .remote import RemotePolicyServerBackend
        return RemotePolicyServerBackend(**kwargs)
    raise ValueError(f"unknown backend {kind!r}; expected 'local' or 'remote'")
