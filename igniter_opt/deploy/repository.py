"""Model repositories: one per workload, with config.pbtxt and the python backend's model.py.

Queue-delay rule (max_queue_delay_microseconds): the plan gives each workload batch b at rate R
requests/s and SLO S ms. The performance model keeps half the SLO for inference (T_inf <= S/2); the
other half is for forming the batch and queueing. A batch of b fills in (b - 1) / R seconds at rate
R, so the dynamic batcher waits at most

    delay = min(S / 2, (b - 1) / R)            (0 for b = 1: never wait)

which is what the paper's batch rule b = ceil((S/2) R B / (B + d_in R)) budgets for.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from igniter_opt.data import dnn as dnn_module
from igniter_opt.deploy import models as models_module
from igniter_opt.deploy.models import INPUT_NAME, OUTPUT_NAME, spec_for

_NAME_OK = re.compile(r"[^A-Za-z0-9_.-]")


def queue_delay_us(slo_ms: float, batch: int, rate_rps: float) -> int:
    """The dynamic batcher's max queue delay in microseconds (rule in the module docstring)."""
    fill_ms = (batch - 1) * 1000.0 / rate_rps
    return round(1000.0 * min(slo_ms / 2.0, fill_ms))


def triton_name(workload: str) -> str:
    """A Triton model name for a workload name (characters outside [A-Za-z0-9_.-] become _)."""
    return _NAME_OK.sub("_", workload) or "model"


@dataclass(frozen=True)
class ModelConfig:
    """What config.pbtxt says for one workload."""

    name: str
    model: str
    batch: int
    queue_delay_us: int
    kind: str = "KIND_CPU"            # KIND_GPU or KIND_CPU
    gpu: int = 0
    fp16: bool = False
    response_cache: bool = False      # serve repeated identical requests from Triton's cache
    emulation: str = ""               # emulated GPU: the emulation file (deploy/emulation.py), else ""
    server_key: str = ""              # emulated GPU: this server's key in that file (default: name)

    def __post_init__(self) -> None:
        if self.kind not in ("KIND_GPU", "KIND_CPU"):
            raise ValueError(f"kind must be KIND_GPU or KIND_CPU, got {self.kind!r}")
        if self.batch < 1:
            raise ValueError(f"batch must be >= 1, got {self.batch}")


def _dims(dims: tuple[int, ...]) -> str:
    return "[ " + ", ".join(str(d) for d in dims) + " ]"


def config_pbtxt(cfg: ModelConfig) -> str:
    """The text of config.pbtxt (protobuf text format)."""
    spec = spec_for(cfg.model)
    group = f"{{ count: 1 kind: {cfg.kind}" + (f" gpus: [ {cfg.gpu} ]" if cfg.kind == "KIND_GPU" else "") + " }"
    device = "emulate" if cfg.emulation else "gpu" if cfg.kind == "KIND_GPU" else "cpu"
    params = {"igniter_model": spec.name, "igniter_device": device, "igniter_fp16": str(cfg.fp16).lower()}
    if cfg.emulation:
        params.update(igniter_emulation=cfg.emulation, igniter_server=cfg.server_key or cfg.name)
    lines = [
        f'name: "{cfg.name}"',
        'backend: "python"',
        f"max_batch_size: {cfg.batch}",
        f'input [ {{ name: "{INPUT_NAME}" data_type: TYPE_FP32 dims: {_dims(spec.input_dims)} }} ]',
        f'output [ {{ name: "{OUTPUT_NAME}" data_type: TYPE_FP32 dims: {_dims(spec.output_dims)} }} ]',
        f"instance_group [ {group} ]",
        "dynamic_batching {",
        f"  preferred_batch_size: [ {cfg.batch} ]",
        f"  max_queue_delay_microseconds: {cfg.queue_delay_us}",
        "}",
    ]
    if cfg.response_cache:
        lines.append("response_cache { enable: true }")
    lines += [f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}' for k, v in params.items()]
    return "\n".join(lines) + "\n"


def write_repository(root: str | Path, cfg: ModelConfig) -> Path:
    """Write ROOT/<name>/config.pbtxt, ROOT/<name>/1/model.py and its dnn.py; return ROOT (the repository)."""
    root = Path(root)
    model_dir = root / cfg.name
    if model_dir.exists():
        shutil.rmtree(model_dir)
    (model_dir / "1").mkdir(parents=True)
    (model_dir / "config.pbtxt").write_text(config_pbtxt(cfg))
    shutil.copyfile(models_module.__file__, model_dir / "1" / "model.py")
    shutil.copyfile(dnn_module.__file__, model_dir / "1" / "dnn.py")
    return root
