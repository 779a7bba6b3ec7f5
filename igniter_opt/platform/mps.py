"""NVIDIA MPS control daemon: start one under a run directory, give clients their share, stop it.

Start: `nvidia-cuda-mps-control -d` with CUDA_MPS_PIPE_DIRECTORY and CUDA_MPS_LOG_DIRECTORY under the
run directory. Stop: `echo quit | nvidia-cuda-mps-control` with the same environment. A client gets
the pipe directory and CUDA_MPS_ACTIVE_THREAD_PERCENTAGE (its share of the SMs).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CONTROL = "nvidia-cuda-mps-control"
# A unix socket path holds at most 107 bytes; MPS appends names such as "/control" to the pipe dir.
MAX_PIPE_DIR_LEN = 80
SCRATCH_PREFIX = "igniter-mps-"  # short pipe directories made under the system's temporary directory


def mps_available() -> bool:
    """True when the MPS control binary is on PATH and a GPU is present."""
    if shutil.which(CONTROL) is None:
        return False
    from igniter_opt.platform.nvml import nvml_available

    return nvml_available()


def mps_env(pipe_dir: Path, log_dir: Path) -> dict[str, str]:
    """The variables that point the daemon and its clients at our pipe and log directories."""
    return {"CUDA_MPS_PIPE_DIRECTORY": str(pipe_dir), "CUDA_MPS_LOG_DIRECTORY": str(log_dir)}


def start_command(control: str = CONTROL) -> list[str]:
    """argv that starts the control daemon (it forks into the background)."""
    return [control, "-d"]


def quit_command(control: str = CONTROL) -> tuple[list[str], str]:
    """argv and stdin that stop the daemon: `echo quit | nvidia-cuda-mps-control`."""
    return [control], "quit\n"


def share_value(share_pct: float) -> str:
    """CUDA_MPS_ACTIVE_THREAD_PERCENTAGE as text: 50 -> "50", 37.5 -> "37.5"."""
    if not 0 < share_pct <= 100:
        raise ValueError(f"MPS share must be in (0, 100], got {share_pct}")
    return f"{share_pct:g}"


class MpsDaemon:
    """Context manager owning an MPS control daemon under `run_dir` (started only if none of ours runs).

    The daemon is stopped on exit, also when the body raised (KeyboardInterrupt included), but only
    if this object started it.
    """

    def __init__(self, run_dir: str | Path, control: str = CONTROL, timeout_s: float = 15.0) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.control = control
        self.timeout_s = timeout_s
        self._pipe = self.run_dir / "mps" / "pipe"
        self._scratch: Path | None = None  # a short directory made for the pipe (stop removes it)
        self.log_dir = self.run_dir / "mps" / "log"
        self.started = False

    @property
    def pipe_dir(self) -> Path:
        """The daemon's pipe directory: under run_dir, or, where that path is too long for the
        daemon's sockets, in a short temporary directory made on first use."""
        if self._scratch is None and len(str(self._pipe)) > MAX_PIPE_DIR_LEN:
            self._scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
            self._pipe = self._scratch / "pipe"
        return self._pipe

    @pipe_dir.setter
    def pipe_dir(self, path: Path) -> None:
        """Another object's pipe directory (a node's teardown): a short one of ours is removed
        by stop as well."""
        self._pipe = Path(path)
        parent = self._pipe.parent
        own = parent.name.startswith(SCRATCH_PREFIX) and parent.parent == Path(tempfile.gettempdir())
        self._scratch = parent if own else None

    @property
    def env(self) -> dict[str, str]:
        return mps_env(self.pipe_dir, self.log_dir)

    def _full_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def client_env(self, share_pct: float) -> dict[str, str]:
        """Environment of a client process running with `share_pct` % of the SMs."""
        return {"CUDA_MPS_PIPE_DIRECTORY": str(self.pipe_dir),
                "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": share_value(share_pct)}

    def running(self) -> bool:
        """Does a control daemon answer on our pipe directory?"""
        if not (self.pipe_dir / "control").exists():
            return False
        try:
            done = subprocess.run([self.control], input="get_server_list\n", env=self._full_env(),
                                  capture_output=True, text=True, timeout=self.timeout_s)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0

    def start(self) -> None:
        """Start the daemon unless ours already runs."""
        self.pipe_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.running():
            return
        subprocess.run(start_command(self.control), env=self._full_env(), check=True,
                       capture_output=True, text=True, timeout=self.timeout_s)
        self.started = True

    def stop(self) -> None:
        """Stop the daemon if we started it, and remove a short pipe directory made for it
        (idempotent)."""
        try:
            if self.started:
                argv, stdin = quit_command(self.control)
                subprocess.run(argv, input=stdin, env=self._full_env(), capture_output=True, text=True,
                               timeout=self.timeout_s)
        finally:
            self.started = False
            if self._scratch is not None:
                shutil.rmtree(self._scratch, ignore_errors=True)
                self._scratch = None

    def __enter__(self) -> MpsDaemon:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
