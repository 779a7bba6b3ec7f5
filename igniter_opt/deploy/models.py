"""The served models, in one file that is also the python backend's model.py.

The repository writer copies this file verbatim into every model version directory, with
igniter_opt/data/dnn.py (the model list and shapes) beside it as dnn.py, so it needs nothing else
from igniter_opt: only numpy, Triton's `triton_python_backend_utils`, and torch/torchvision
(lazily, on GPU hosts only).

- GPU (`device` parameter "gpu"): the paper's DNNs from torchvision, built with weights=None (timing
  does not depend on the weights; nothing is downloaded), optionally fp16. For SSD the raw head
  outputs are returned (box regression 4 + class logits 81 per anchor, 8732 anchors), which is the
  output size of the published profile (2,968,880 bytes); postprocessing (NMS) is not run.
- CPU (`device` "cpu"): a stand-in per model name with the same input and output shapes and a few
  cheap numpy operations, so the whole deploy path runs on machines without a GPU.
- Emulated GPU (`device` "emulate", deploy/emulation.py): a stand-in that takes, per batch of n, the
  service time the emulation file gives its server for batch n (x error x time scale), re-reading
  the file when it changes. It echoes each request's input checksum (crc32 of its bytes, low 24
  bits, exact in float32) in output element 0 and writes every new checksum it sees to
  `seen-<server>.txt` beside the emulation file, so a test can tell which payloads arrived.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

try:  # imported as part of the package
    from ..data.dnn import ALIASES, SPECS, SSD_ANCHORS, SSD_CLASSES, ModelSpec, spec_for
except ImportError:  # pragma: no cover - loaded by Triton as model.py: dnn.py is copied beside it
    from dnn import ALIASES, SPECS, SSD_ANCHORS, SSD_CLASSES, ModelSpec, spec_for  # type: ignore[no-redef]

__all__ = ["ALIASES", "EmulatedStandin", "INPUT_NAME", "OUTPUT_NAME", "SPECS", "SSD_ANCHORS", "SSD_CLASSES",
           "ModelSpec", "TritonPythonModel", "cpu_standin", "input_checksum", "spec_for", "torch_model"]

try:  # only importable inside Triton's python backend stub
    import triton_python_backend_utils as pb_utils
except ImportError:  # pragma: no cover - outside Triton (tests, the repository writer)
    pb_utils = None

INPUT_NAME, OUTPUT_NAME = "INPUT0", "OUTPUT0"


def cpu_standin(model: str) -> Callable[[np.ndarray], np.ndarray]:
    """Cheap numpy compute mapping a batch of inputs to a batch of outputs of the model's shapes."""
    spec = spec_for(model)
    if spec.name == "identity":
        return lambda x: x.copy()
    rng = np.random.default_rng(zlib.crc32(spec.name.encode()))
    feats = 48
    head = rng.standard_normal((feats, int(np.prod(spec.output_dims[-1:])))).astype(np.float32)
    bias = rng.standard_normal(spec.output_dims).astype(np.float32) if len(spec.output_dims) > 1 else None

    def run(x: np.ndarray) -> np.ndarray:
        pooled = x.reshape(x.shape[0], feats, -1).mean(axis=2)       # (n, 48)
        out = np.tanh(pooled @ head)                                  # (n, last dim)
        if bias is not None:                                          # ssd: one row per anchor
            out = out[:, None, :] + bias[None]
        return out.astype(np.float32).reshape((x.shape[0], *spec.output_dims))
    return run


def torch_model(model: str, fp16: bool = False, device: str = "cuda") -> Callable[[np.ndarray], np.ndarray]:
    """The torchvision DNN (weights=None) as a numpy-in, numpy-out function on `device`."""
    import torch  # GPU hosts only
    import torchvision

    spec = spec_for(model)
    if spec.name == "ssd":
        net = torchvision.models.detection.ssd300_vgg16(weights=None, weights_backbone=None,
                                                        num_classes=SSD_CLASSES)

        def forward(x: Any) -> Any:
            feats = list(net.backbone(x).values())
            head = net.head(feats)
            return torch.cat([head["bbox_regression"], head["cls_logits"]], dim=2)
    elif spec.name == "identity":
        def forward(x: Any) -> Any:
            return x
        net = torch.nn.Identity()
    else:
        net = getattr(torchvision.models, spec.name)(weights=None)
        forward = net
    dtype = torch.float16 if fp16 else torch.float32
    net = net.eval().to(device=device, dtype=dtype)

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            t = torch.from_numpy(x).to(device=device, dtype=dtype, non_blocking=True)
            return forward(t).float().cpu().numpy()
    return run


def input_checksum(item: np.ndarray) -> int:
    """crc32 of one request's input bytes, low 24 bits (exact as a float32)."""
    return zlib.crc32(np.ascontiguousarray(item).tobytes()) & 0xFFFFFF


class EmulatedStandin:
    """Sleeps the emulation file's service time for its server and batch size; outputs zeros with the
    input checksum in element 0. The file is re-read when its modification time or inode changes."""

    def __init__(self, model: str, path: str, key: str) -> None:
        self.spec = spec_for(model)
        self.path, self.key = path, key
        self._stamp: tuple[int, int] | None = None
        self.service_ms: list[float] = [0.0]
        self.factor = 1.0
        seen_dir = os.path.dirname(path)
        self._seen: set[int] = set()
        self._seen_file = open(os.path.join(seen_dir, f"seen-{key}.txt"), "a")
        self.reload()

    def reload(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError:
            return  # keep the last service times (the deployment is being torn down)
        stamp = (st.st_mtime_ns, st.st_ino)
        if stamp == self._stamp:
            return
        with open(self.path) as f:
            data = json.load(f)
        server = data["servers"].get(self.key)
        if server is not None:
            self.service_ms = [float(t) for t in server["service_ms"]]
            self.factor = float(server["error"]) * float(data.get("time_scale", 1.0))
        self._stamp = stamp

    def __call__(self, x: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        self.reload()
        n = x.shape[0]
        out = np.zeros((n, *self.spec.output_dims), dtype=np.float32)
        flat = out.reshape(n, -1)
        for i in range(n):
            crc = input_checksum(x[i])
            flat[i, 0] = crc
            if crc not in self._seen:
                self._seen.add(crc)
                self._seen_file.write(f"{crc:06x}\n")
                self._seen_file.flush()
        busy = self.service_ms[min(n, len(self.service_ms)) - 1] * self.factor / 1000.0
        left = start + busy - time.perf_counter()
        if left > 0:
            time.sleep(left)
        return out

    def close(self) -> None:
        self._seen_file.close()


def _param(config: dict, key: str, default: str) -> str:
    return config.get("parameters", {}).get(key, {}).get("string_value", default)


class TritonPythonModel:
    """Triton python backend entry: one model per instance, batched execution of all requests."""

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        name = _param(config, "igniter_model", "identity")
        device = _param(config, "igniter_device", "cpu")
        fp16 = _param(config, "igniter_fp16", "false") == "true"
        if device == "gpu":
            gpu = args.get("model_instance_device_id", "0")
            self.run = torch_model(name, fp16=fp16, device=f"cuda:{gpu}")
            self.run(np.zeros((1, *spec_for(name).input_dims), np.float32))  # warm up kernels
        elif device == "emulate":
            self.run = EmulatedStandin(name, _param(config, "igniter_emulation", ""),
                                       _param(config, "igniter_server", name))
        else:
            self.run = cpu_standin(name)

    def execute(self, requests: list) -> list:
        inputs = [pb_utils.get_input_tensor_by_name(r, INPUT_NAME).as_numpy() for r in requests]
        sizes = [x.shape[0] for x in inputs]
        out = self.run(np.concatenate(inputs) if len(inputs) > 1 else inputs[0])
        responses, start = [], 0
        for n in sizes:
            tensor = pb_utils.Tensor(OUTPUT_NAME, np.ascontiguousarray(out[start:start + n]))
            responses.append(pb_utils.InferenceResponse(output_tensors=[tensor]))
            start += n
        return responses

    def finalize(self) -> None:
        if isinstance(self.run, EmulatedStandin):
            self.run.close()
        self.run = None  # type: ignore[assignment]
