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
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

try:  # imported as part of the package
    from ..data.dnn import ALIASES, SPECS, SSD_ANCHORS, SSD_CLASSES, ModelSpec, spec_for
except ImportError:  # pragma: no cover - loaded by Triton as model.py: dnn.py is copied beside it
    from dnn import ALIASES, SPECS, SSD_ANCHORS, SSD_CLASSES, ModelSpec, spec_for  # type: ignore[no-redef]

__all__ = ["ALIASES", "INPUT_NAME", "OUTPUT_NAME", "SPECS", "SSD_ANCHORS", "SSD_CLASSES", "ModelSpec",
           "TritonPythonModel", "cpu_standin", "spec_for", "torch_model"]

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
        self.run = None  # type: ignore[assignment]
