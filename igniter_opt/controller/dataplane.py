"""The data plane: one tritonserver process per workload configuration, that outlives the controller.

`LocalPlane` starts servers with deploy/'s pieces (repository writer, tritonserver discovery,
command line, environment, readiness wait) but, unlike `igniter deploy`, without PR_SET_PDEATHSIG:
a SIGKILLed controller leaves them serving, and a restarted one finds them again by pid (process
group), repository path in the command line, and Triton's health endpoint. Every server lives
under STATE_DIR/servers/<server id>/ (repository, log), so anything running from there that the
state does not know is an orphan and is killed (`sweep`). `NoPlane` (dry run) starts nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from typing_extensions import override

from igniter_opt.controller.records import Endpoint, Placement, Plan, Server
from igniter_opt.deploy.backends.launcher import free_port, wait_ready
from igniter_opt.deploy.backends.local import (
    find_tritonserver,
    group_exists,
    prepare_backends,
    remove_shm,
    running,
    server_command,
    server_env,
    signal_group,
)
from igniter_opt.deploy.repository import ModelConfig, queue_delay_us, write_repository
from igniter_opt.deploy.types import LaunchError
from igniter_opt.platform.mps import MpsDaemon, mps_available
from igniter_opt.platform.nvml import gpu_count, nvml_available

SERVERS = "servers"


class DataPlane(ABC):
    """Starts, checks and stops servers; `kind` is the --backend name."""

    kind = ""
    warnings: list[str]

    @abstractmethod
    def spawn(self, server: Server, placement: Placement) -> Server:
        """Start the process (not yet ready): the server with its pid and ports."""

    @abstractmethod
    def await_ready(self, server: Server) -> None:
        """Return once it answers ready; LaunchError (and the process stopped) otherwise."""

    @abstractmethod
    def stop(self, server: Server) -> None:
        """Stop it and everything in its process group (idempotent)."""

    @abstractmethod
    def alive(self, server: Server) -> bool:
        """Is this very server (not a reused pid) running and ready?"""

    @abstractmethod
    def sweep(self, keep: list[Server]) -> list[str]:
        """Kill servers of this state directory that are not in `keep` (orphans); what was killed."""

    def release(self, used: set[int]) -> list[int]:
        """Give back what holds GPU slots not in `used` (called with no server draining and no
        change in flight); the slots released. Only the Ray plane reserves slots."""
        del used
        return []

    def close(self, teardown: bool) -> None:  # noqa: B027  (most planes hold nothing)
        """Release what the plane holds (MPS daemon on teardown)."""

    def observe(self, plan: Plan, servers: list[Server], endpoints: dict[str, Endpoint]) -> None:  # noqa: B027
        """Hear the plan, servers and endpoints after every applied change and on start (the
        emulated plane rewrites its emulation file: co-runners and shares follow the plan)."""

    def emulation(self) -> dict[str, Any] | None:
        """The emulation's settings when the servers are emulated GPUs, else None (a real device)."""
        return None


class NoPlane(DataPlane):
    """Dry run: placement and state only, no servers (endpoints have no address)."""

    kind = "none"

    def __init__(self) -> None:
        self.warnings = ["dry run (--backend none): no servers are started"]

    @override
    def spawn(self, server: Server, placement: Placement) -> Server:
        return server

    @override
    def await_ready(self, server: Server) -> None:
        return None

    @override
    def stop(self, server: Server) -> None:
        return None

    @override
    def alive(self, server: Server) -> bool:
        return True

    @override
    def sweep(self, keep: list[Server]) -> list[str]:
        return []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class LocalPlane(DataPlane):
    """tritonserver processes on this host, each its own process group, surviving the controller."""

    kind = "local"

    def __init__(self, state_dir: str | Path, tritonserver: str | None = None, ready_timeout_s: float = 120.0,
                 device: str = "auto") -> None:
        self.root = Path(state_dir).resolve() / SERVERS
        self.root.mkdir(parents=True, exist_ok=True)
        install = find_tritonserver(tritonserver)
        if install is None:
            raise LaunchError("no tritonserver: give --tritonserver PATH, put it on $PATH, or pip install "
                              "nvidia-pytriton")
        self.install = install
        self.backends = prepare_backends(install, self.root.parent)
        self.ready_timeout_s = ready_timeout_s
        self.gpus = gpu_count() if device != "cpu" and nvml_available() else 0
        self.warnings = []
        self.mps: MpsDaemon | None = None
        if self.gpus and mps_available():
            self.mps = MpsDaemon(self.root.parent)
            if not self.mps.running():
                self.mps.start()
        elif self.gpus:
            self.warnings.append("no nvidia-cuda-mps-control: MPS shares are NOT enforced")
        else:
            self.warnings.append("no GPU: CPU stand-ins, MPS shares are NOT enforced (CPU)")
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def _gpu(self, placement: Placement) -> int | None:
        return placement.gpu % self.gpus if self.gpus else None

    def model_config(self, server: Server, placement: Placement) -> ModelConfig:
        """The server's config.pbtxt settings (the emulated plane adds its emulation file)."""
        del server  # the emulated plane names it in the config
        gpu = self._gpu(placement)
        spec = placement.spec
        return ModelConfig(name=spec.name, model=spec.model, batch=placement.batch,
                           queue_delay_us=queue_delay_us(spec.slo_ms, placement.batch, spec.rate_rps),
                           kind="KIND_CPU" if gpu is None else "KIND_GPU", gpu=gpu or 0)

    def spawn(self, server: Server, placement: Placement) -> Server:
        home = self.root / server.id
        gpu = self._gpu(placement)
        repo = write_repository(home / "repo", self.model_config(server, placement))
        ports = (free_port(), free_port(), free_port())
        argv = server_command(self.install, repo, ports, self.backends, self._shm(server))
        env = self.mps.client_env(placement.share_pct) if self.mps is not None else {}
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(gpu)
        with open(home / "server.log", "ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=server_env(self.install, env), start_new_session=True)
        self._children[proc.pid] = proc
        return Server(id=server.id, workload=server.workload, status=server.status, pid=proc.pid,
                      http_port=ports[0], grpc_port=ports[1], metrics_port=ports[2], repository=str(repo))

    @staticmethod
    def _shm(server: Server) -> str:
        return f"igniter_{server.id}_"

    def await_ready(self, server: Server) -> None:
        try:
            wait_ready(server.http_url, self.ready_timeout_s, alive=lambda: self._is_ours(server),
                       what=f"tritonserver {server.id}")
        except LaunchError as exc:
            child = self._children.get(server.pid)
            code = None if child is None else child.poll()
            self.stop(server)
            status = "" if code is None else f" (exit status {code})"
            raise LaunchError(f"{exc}{status}; log: {self.root / server.id / 'server.log'}") from None

    def _is_ours(self, server: Server) -> bool:
        child = self._children.get(server.pid)
        if child is not None and child.poll() is not None:
            return False
        return server.pid > 0 and running(server.pid) and server.repository in _cmdline(server.pid)

    def alive(self, server: Server) -> bool:
        if not self._is_ours(server):
            return False
        try:
            wait_ready(server.http_url, 2.0, what=server.id)
        except LaunchError:
            return False
        return True

    def stop(self, server: Server, timeout_s: float = 10.0) -> None:
        if server.pid <= 0:
            return
        pid = server.pid
        if self._is_ours(server):
            signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and self._is_ours(server):
                time.sleep(0.05)
        if group_exists(pid) and (pid in self._children or server.repository in _cmdline(pid)
                                        or not running(pid)):
            signal_group(pid, signal.SIGKILL)
        child = self._children.pop(pid, None)
        if child is not None:
            child.wait()
        deadline = time.monotonic() + 5.0
        while group_exists(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        remove_shm(self._shm(server))

    def sweep(self, keep: list[Server]) -> list[str]:
        pids = {s.pid for s in keep}
        marker = str(self.root) + os.sep
        killed: list[int] = []
        ids: set[str] = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            cmd = _cmdline(pid)
            if marker not in cmd or not ("tritonserver" in cmd or "triton_python_backend_stub" in cmd):
                continue
            try:
                pgid = os.getpgid(pid)
            except ProcessLookupError:
                continue
            if pgid in pids or pid in pids:
                continue
            signal_group(pgid, signal.SIGKILL)
            killed.append(pid)
            ids.add(cmd.split(marker, 1)[1].split(os.sep, 1)[0])
        for pid in killed:
            child = self._children.pop(pid, None)
            if child is not None:
                child.wait()
        for server_id in ids:
            remove_shm(f"igniter_{server_id}_")
        return [str(pid) for pid in killed]

    def close(self, teardown: bool) -> None:
        if teardown and self.mps is not None:
            self.mps.stop()
