"""The `local` launcher: one tritonserver process per workload on this host.

The binary is, in order: the --tritonserver option, `tritonserver` on $PATH (e.g. inside the NGC
container), or the one bundled in the nvidia-pytriton wheel. For the bundled one a backend directory
is assembled under the run directory (python backend + the stub built for this interpreter's
version), the wheel's libraries go on LD_LIBRARY_PATH, and so does the interpreter's LIBDIR (a pyenv
Python's stub links the shared libpython). This interpreter's bin/ leads PATH so the stub runs with
the same environment (numpy, torch) as igniter.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from igniter_opt.deploy.backends.launcher import Launcher, free_port, wait_ready
from igniter_opt.deploy.types import Endpoint, LaunchError, ServerSpec

CACHE_BYTES = 16 * 2**20


@dataclass
class TritonInstall:
    """A tritonserver binary and what it needs to run python-backend models."""

    binary: Path
    source: str                          # "option" | "path" | "pytriton"
    lib_dirs: list[Path] = field(default_factory=list)
    backends: Path | None = None         # pytriton: its backends/ (python backend without stub)
    stub: Path | None = None             # pytriton: triton_python_backend_stub for this Python
    caches: Path | None = None           # pytriton: its caches/ (the local response cache)


def _pytriton_install() -> TritonInstall | None:
    # Located, not imported: pytriton's __init__ pulls in its own client's dependencies, which a
    # minimal install (a GPU host's wheel set) lacks; only the bundled binary is needed.
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.origin:
        return None
    root = Path(spec.origin).resolve().parent
    dist = root / "tritonserver"
    binary = dist / "bin" / "tritonserver"
    if not binary.exists():
        return None
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    libs = [root.parent / "nvidia_pytriton.libs", dist / "lib", dist / "external_libs"]
    return TritonInstall(binary=binary, source="pytriton", lib_dirs=[p for p in libs if p.is_dir()],
                         backends=dist / "backends",
                         stub=dist / "python_backend_stubs" / version / "triton_python_backend_stub",
                         caches=dist / "caches")


def find_tritonserver(option: str | Path | None = None) -> TritonInstall | None:
    """The tritonserver to use (option, then $PATH, then nvidia-pytriton's), or None."""
    if option:
        path = Path(option)
        if not path.is_file():
            raise LaunchError(f"--tritonserver {option}: no such file")
        if not os.access(path, os.X_OK):
            raise LaunchError(f"--tritonserver {option}: not executable")
        bundled = _pytriton_install()
        if bundled is not None and path.resolve() == bundled.binary:
            return bundled
        return TritonInstall(binary=path, source="option")
    on_path = shutil.which("tritonserver")
    if on_path:
        return TritonInstall(binary=Path(on_path), source="path")
    return _pytriton_install()


def python_libdir() -> str:
    """This interpreter's LIBDIR (where a pyenv Python keeps libpython3.X.so)."""
    return str(sysconfig.get_config_var("LIBDIR") or "")


def server_env(install: TritonInstall, extra: dict[str, str] | None = None,
               base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of one server process: libraries, PATH to this Python, then `extra` (MPS)."""
    env = dict(os.environ if base is None else base)
    libs = [str(p) for p in install.lib_dirs]
    if install.source == "pytriton":
        libs.insert(0, python_libdir())
    if env.get("LD_LIBRARY_PATH"):
        libs.append(env["LD_LIBRARY_PATH"])
    if libs:
        env["LD_LIBRARY_PATH"] = ":".join(p for p in libs if p)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env.update(extra or {})
    return env


def prepare_backends(install: TritonInstall, run_dir: Path) -> Path | None:
    """pytriton: copy its python backend and this Python's stub into RUN_DIR/triton-backends."""
    if install.source != "pytriton" or install.backends is None or install.stub is None:
        return None
    if not install.stub.exists():
        raise LaunchError(f"nvidia-pytriton has no python backend stub for Python "
                          f"{sys.version_info.major}.{sys.version_info.minor} ({install.stub})")
    target = run_dir / "triton-backends"
    if not (target / "python" / "triton_python_backend_stub").exists():
        shutil.copytree(install.backends, target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(install.stub, target / "python" / "triton_python_backend_stub")
    return target


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGKILL the server when igniter dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # not Linux/glibc: the context managers still stop what they started
        pass


def remove_shm(prefix: str, shm_dir: Path = Path("/dev/shm")) -> None:
    """Remove the python backend's shared-memory regions of one server (unique prefix)."""
    for region in shm_dir.glob(f"{prefix}*"):
        region.unlink(missing_ok=True)


# a launcher's regions carry its pid: igniter_<model>_<8 hex>_owner<pid>_<the backend's suffix>
_OWNED = re.compile(r"^igniter_.+_[0-9a-f]{8}_owner(\d+)_")


def owned_shm_prefix(model_name: str) -> str:
    """A server's shm region prefix: unique, and naming this process as its owner."""
    return f"igniter_{model_name}_{uuid.uuid4().hex[:8]}_owner{os.getpid()}_"


def running(pid: int) -> bool:
    """Exists and is not a zombie (Linux /proc; any user's process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def signal_group(pgid: int, sig: int) -> None:
    """Send `sig` to a process group; one already gone (or not ours) is not an error."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def group_exists(pgid: int) -> bool:
    """Is any process of this group (ours to signal) still there?"""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def sweep_orphan_shm(shm_dir: Path = Path("/dev/shm")) -> list[str]:
    """Remove the regions of launchers that are gone. A launcher killed by SIGKILL takes its
    servers along (PR_SET_PDEATHSIG), and their python stubs usually remove their shared memory,
    not always (a killed test run left 9 MiB a server); the next launcher on the host removes
    it. Regions of live owners, and regions named otherwise (the service's data plane sweeps its
    own), stay. The names removed."""
    gone = []
    for region in shm_dir.glob("igniter_*"):
        owner = _OWNED.match(region.name)
        if owner and not running(int(owner.group(1))):
            region.unlink(missing_ok=True)
            gone.append(region.name)
    return gone


def server_command(install: TritonInstall, repository: Path, ports: tuple[int, int, int],
                   backends: Path | None, shm_prefix: str) -> list[str]:
    """argv of one tritonserver: its repository, HTTP/gRPC/metrics ports, quick exit, a 16 MiB
    response cache (used only by models whose config enables it)."""
    http, grpc, metrics = ports
    argv = [str(install.binary), f"--model-repository={repository}", f"--http-port={http}",
            f"--grpc-port={grpc}", f"--metrics-port={metrics}", "--exit-timeout-secs=5",
            f"--backend-config=python,shm-region-prefix-name={shm_prefix}", f"--cache-config=local,size={CACHE_BYTES}"]
    if install.caches is not None:
        argv.append(f"--cache-directory={install.caches}")
    if backends is not None:
        argv.append(f"--backend-directory={backends}")
    return argv


class LocalLauncher(Launcher):
    """tritonserver processes, each in its own process group (the python stubs die with it)."""

    backend = "local"

    def __init__(self, run_dir: str | Path, tritonserver: str | Path | None = None,
                 ready_timeout_s: float = 60.0, attempts: int = 3) -> None:
        self.run_dir = Path(run_dir).resolve()
        install = find_tritonserver(tritonserver)
        if install is None:
            raise LaunchError("no tritonserver: give --tritonserver PATH, put it on $PATH, or "
                              "pip install nvidia-pytriton")
        self.install = install
        self.ready_timeout_s = ready_timeout_s
        self.attempts = attempts
        self.procs: list[subprocess.Popen] = []
        self._shm: dict[int, str] = {}      # pid -> the python backend's shm region prefix
        self._backends: Path | None = None
        sweep_orphan_shm()  # what an earlier launcher killed by SIGKILL left behind

    def _spawn(self, spec: ServerSpec) -> tuple[subprocess.Popen, tuple[int, int, int], Path]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self._backends is None:
            self._backends = prepare_backends(self.install, self.run_dir)
        # one log per server: a shadow has its workload's model name but its own repository folder
        log_path = self.run_dir / "logs" / f"{spec.repository.name or spec.model_name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        ports = (free_port(), free_port(), free_port())
        shm = owned_shm_prefix(spec.model_name)
        argv = server_command(self.install, spec.repository, ports, self._backends, shm)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=server_env(self.install, spec.env), start_new_session=True,
                                    preexec_fn=_die_with_parent)
        self.procs.append(proc)
        self._shm[proc.pid] = shm
        return proc, ports, log_path

    def _await(self, spec: ServerSpec, proc: subprocess.Popen, ports: tuple[int, int, int],
               log_path: Path) -> Endpoint:
        http_url = f"http://127.0.0.1:{ports[0]}"
        try:
            wait_ready(http_url, self.ready_timeout_s, alive=lambda: proc.poll() is None,
                       what=f"tritonserver for {spec.name}")
        except LaunchError as exc:
            self._stop(proc)
            self.procs.remove(proc)
            raise LaunchError(f"{exc}; log: {log_path}") from None
        return Endpoint(name=spec.name, model_name=spec.model_name, grpc_url=f"127.0.0.1:{ports[1]}",
                        http_url=http_url, handle=str(proc.pid), log=str(log_path), gpu=spec.gpu,
                        share_pct=spec.share_pct, metrics_url=f"http://127.0.0.1:{ports[2]}/metrics")

    def start(self, spec: ServerSpec) -> Endpoint:
        last: LaunchError | None = None
        for _ in range(self.attempts):  # a free port can be taken between picking and binding
            try:
                return self._await(spec, *self._spawn(spec))
            except LaunchError as exc:
                last = exc
        raise last if last else LaunchError(f"tritonserver for {spec.name} did not start")

    def start_all(self, specs: list[ServerSpec]) -> list[Endpoint]:
        """Start all processes at once, then wait for each (a failed one is retried alone)."""
        spawned = [(spec, *self._spawn(spec)) for spec in specs]
        endpoints = []
        for spec, proc, ports, log in spawned:
            try:
                endpoints.append(self._await(spec, proc, ports, log))
            except LaunchError:
                endpoints.append(self.start(spec))
        return endpoints

    def _stop(self, proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
        """SIGTERM the process group, wait, then SIGKILL what remains of it (python stubs included)."""
        if proc.poll() is None:
            signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
        signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 5.0  # SIGKILL is asynchronous: wait until the group is gone
        while time.monotonic() < deadline and group_exists(proc.pid):
            time.sleep(0.02)
        remove_shm(self._shm.pop(proc.pid, "igniter_never_"))

    def stop_all(self) -> None:
        for proc in self.procs:  # all shut down in parallel
            if proc.poll() is None:
                signal_group(proc.pid, signal.SIGTERM)
        while self.procs:
            self._stop(self.procs.pop())
