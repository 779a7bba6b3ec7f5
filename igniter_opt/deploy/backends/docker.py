"""The `docker` launcher: one NGC tritonserver container per workload, via the docker SDK.

Each container gets its workload's repository mounted read-only at /models, the GPU by a device
request, the MPS pipe directory mounted at the same path with CUDA_MPS_PIPE_DIRECTORY and
CUDA_MPS_ACTIVE_THREAD_PERCENTAGE in its environment, the host's IPC namespace (MPS needs it), and
its HTTP/gRPC ports published on free host ports. The `-pyt-python-py3` images carry PyTorch for
the python backend; torchvision is installed at container start when missing (needs the network
there, or an image that has it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from igniter_opt.deploy.backends.launcher import Launcher, free_port, wait_ready
from igniter_opt.deploy.types import Endpoint, LaunchError, ServerSpec

DEFAULT_IMAGE = "nvcr.io/nvidia/tritonserver"
DEFAULT_TAG = "24.08-pyt-python-py3"
HTTP, GRPC = 8000, 8001
LABEL = "igniter-opt.run-dir"


def image_ref(tag: str = DEFAULT_TAG, image: str = DEFAULT_IMAGE) -> str:
    """nvcr.io/nvidia/tritonserver:<tag>."""
    return f"{image}:{tag}"


def container_command(gpu: bool) -> list[str]:
    """The container's command: tritonserver on /models (torchvision ensured first on a GPU)."""
    server = "tritonserver --model-repository=/models --exit-timeout-secs=5"
    if not gpu:
        return ["tritonserver", "--model-repository=/models", "--exit-timeout-secs=5"]
    return ["bash", "-c", f"python3 -c 'import torchvision' 2>/dev/null || pip install -q torchvision; "
                          f"exec {server}"]


def container_spec(spec: ServerSpec, image: str, host_ports: tuple[int, int], run_dir: Path,
                   mps_pipe_dir: Path | None) -> dict[str, Any]:
    """Keyword arguments of docker's `containers.run` for one workload (pure: tests assert it)."""
    env = {k: v for k, v in spec.env.items()}
    volumes: dict[str, dict[str, str]] = {str(spec.repository): {"bind": "/models", "mode": "ro"}}
    device_requests: list[dict[str, Any]] = []
    if spec.gpu is not None:
        device_requests.append({"Driver": "nvidia", "DeviceIDs": [str(spec.gpu)],
                                "Capabilities": [["gpu"]]})
        env.setdefault("NVIDIA_VISIBLE_DEVICES", str(spec.gpu))
    if mps_pipe_dir is not None:
        volumes[str(mps_pipe_dir)] = {"bind": str(mps_pipe_dir), "mode": "rw"}
        env["CUDA_MPS_PIPE_DIRECTORY"] = str(mps_pipe_dir)
    return {
        "image": image,
        "command": container_command(spec.gpu is not None),
        "name": f"igniter-{spec.model_name}-{host_ports[0]}",
        "detach": True,
        "environment": env,
        "device_requests": device_requests,
        "ipc_mode": "host",
        "ports": {f"{HTTP}/tcp": host_ports[0], f"{GRPC}/tcp": host_ports[1]},
        "volumes": volumes,
        "labels": {LABEL: str(run_dir)},
        "shm_size": "1g",
    }


def docker_client() -> Any:
    """A docker SDK client for the host engine, or LaunchError when none answers."""
    try:
        import docker

        client = docker.from_env(timeout=10)
        client.ping()
        return client
    except Exception as exc:
        raise LaunchError(f"no docker engine reachable: {exc}") from None


class DockerLauncher(Launcher):
    """Containers started with the docker SDK; stopped and removed by stop_all."""

    backend = "docker"

    def __init__(self, run_dir: str | Path, image: str = image_ref(), mps_pipe_dir: Path | None = None,
                 ready_timeout_s: float = 300.0, client: Any = None) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.image = image
        self.mps_pipe_dir = mps_pipe_dir
        self.ready_timeout_s = ready_timeout_s
        self.client = client if client is not None else docker_client()
        self.containers: list[tuple[Any, Path]] = []

    def start(self, spec: ServerSpec) -> Endpoint:
        from docker.types import DeviceRequest

        ports = (free_port(), free_port())
        kwargs = container_spec(spec, self.image, ports, self.run_dir, self.mps_pipe_dir)
        kwargs["device_requests"] = [DeviceRequest(driver=d["Driver"], device_ids=d["DeviceIDs"],
                                                   capabilities=d["Capabilities"])
                                     for d in kwargs["device_requests"]]
        log = self.run_dir / "logs" / f"{spec.model_name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        container = self.client.containers.run(**kwargs)
        self.containers.append((container, log))
        http_url = f"http://127.0.0.1:{ports[0]}"

        def alive() -> bool:
            container.reload()
            return container.status in ("created", "running")
        try:
            wait_ready(http_url, self.ready_timeout_s, alive=alive, what=f"container for {spec.name}")
        except LaunchError:
            log.write_bytes(container.logs())
            raise
        return Endpoint(name=spec.name, model_name=spec.model_name, grpc_url=f"127.0.0.1:{ports[1]}",
                        http_url=http_url, handle=container.id, log=str(log), gpu=spec.gpu,
                        share_pct=spec.share_pct)

    def stop_all(self) -> None:
        while self.containers:
            container, log = self.containers.pop()
            try:
                log.write_bytes(container.logs())
                container.stop(timeout=10)
            except Exception:
                pass
            try:
                container.remove(force=True)
            except Exception:
                pass
