"""Connecting to a Ray cluster: the one `ray_connection`, shared by `deploy --backend ray` and `batch --ray`.

Ray is an extra (`pip install 'igniter-opt[cluster]'`): nothing here imports it at module level, and
`import_ray` turns its absence into a one-line InputError.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from igniter_opt.data.errors import InputError

RAY_MISSING = "Ray is not installed: pip install 'igniter-opt[cluster]'"


def import_ray() -> Any:
    """The ray module, or InputError with the one-line install hint."""
    try:
        import ray
    except ImportError:
        raise InputError(RAY_MISSING) from None
    return ray


def probe(address: str, what: str = "--address", timeout_s: float = 5.0) -> None:
    """InputError at once when nothing listens at HOST:PORT (ray.init would retry for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"{what} {address}: expected HOST:PORT (the head's `ray start --head --port`)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise InputError(f"{what} {address}: no Ray cluster answers there ({exc}); start one with "
                         f"`ray start --head`") from None


def _local_gpus(wanted: int) -> tuple[int, bool]:
    """GPUs for a local cluster: this host's (NVML) when work needs any, else `wanted` declared."""
    if not wanted:
        return 0, False
    from igniter_opt.platform.nvml import gpu_count, nvml_available

    real = gpu_count() if nvml_available() else 0
    return (real, False) if real else (wanted, True)


def _auth_hint(exc: BaseException) -> str:
    """A hint when the cause is Ray's token authentication (the head has it on, this driver off)."""
    seen: BaseException | None = exc
    while seen is not None:
        if "Authentication" in type(seen).__name__ or "InvalidAuthToken" in str(seen):
            return ("; the cluster requires token authentication: set RAY_AUTH_MODE=token, with the "
                    "cluster's token in ~/.ray/auth_token or RAY_AUTH_TOKEN")
        seen = seen.__cause__ or seen.__context__
    return ""


@contextmanager
def ray_connection(address: str | None, notes: list[str], gpus: int = 0) -> Iterator[Any]:
    """Connect to ADDRESS, or $RAY_ADDRESS, or start a local Ray (stopped on exit); yield ray.

    A driver already connected (library use, tests) is used as it is and left connected. A line
    saying which of the three happened is appended to `notes`. A local cluster started for work
    that needs `gpus` GPUs (deploy: the plan's) gets this host's GPUs (NVML), or, where it has
    none, `gpus` declared GPUs so that the CPU stand-ins can be placed; `gpus=0` (batch): none.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    what = "--address" if address else "RAY_ADDRESS"
    address = address or os.environ.get("RAY_ADDRESS") or None
    kw: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address:
        probe(address, what)
        try:
            ray.init(address=address, **kw)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise InputError(f"{what} {address}: cannot connect to a Ray cluster ({exc}){_auth_hint(exc)}") from None
        notes.append(f"connected to the Ray cluster at {address} (left running)")
    else:
        local_gpus, declared = _local_gpus(gpus)
        # "local": a new instance even when `ray start` left one on this host (that one needs --address)
        ray.init(address="local", num_gpus=local_gpus, include_dashboard=False, object_store_memory=100 * 2**20,
                 **kw)
        with_gpus = f" with {local_gpus} {'declared GPUs (none present)' if declared else 'GPUs'}" \
            if local_gpus else ""
        notes.append(f"no --address or RAY_ADDRESS: started a local Ray cluster{with_gpus}; it is stopped at the end")
    try:
        yield ray
    finally:
        ray.shutdown()
