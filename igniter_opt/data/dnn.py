"""The DNN models igniter knows, with their wire shapes: the one list deploy, profiling and the
instance generators use.

Self-contained (standard library only): the deploy repository writer copies this file beside the
Triton python backend's model.py, where igniter_opt may not be installed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WIRE_BYTES = 4  # requests and responses travel as float32
SSD_ANCHORS, SSD_CLASSES = 8732, 81  # the reference's SSD: raw head outputs, 4 box + 81 class values


@dataclass(frozen=True)
class ModelSpec:
    """Wire shapes (without the batch dimension) of one served model; tensors are FP32."""

    name: str
    input_dims: tuple[int, ...]
    output_dims: tuple[int, ...]
    torchvision: str = ""  # the torchvision builder (empty: not a torchvision DNN)

    @property
    def input_bytes(self) -> int:
        return WIRE_BYTES * math.prod(self.input_dims)

    @property
    def output_bytes(self) -> int:
        return WIRE_BYTES * math.prod(self.output_dims)


# The paper's DNNs, in the paper's order (raw-profile, instance and plan names).
DNNS: dict[str, ModelSpec] = {
    "alexnet": ModelSpec("alexnet", (3, 224, 224), (1000,), "alexnet"),
    "resnet50": ModelSpec("resnet50", (3, 224, 224), (1000,), "resnet50"),
    "vgg19": ModelSpec("vgg19", (3, 224, 224), (1000,), "vgg19"),
    "ssd": ModelSpec("ssd", (3, 300, 300), (SSD_ANCHORS, 4 + SSD_CLASSES), "ssd300_vgg16"),
}
MODEL_NAMES: tuple[str, ...] = tuple(DNNS)
# What deploy serves: the DNNs plus the trivial model of the load benchmark.
SPECS: dict[str, ModelSpec] = {**DNNS, "identity": ModelSpec("identity", (4,), (4,))}
# torchvision builder names that differ from ours.
ALIASES: dict[str, str] = {s.torchvision: s.name for s in DNNS.values() if s.torchvision != s.name}


def spec_for(model: str) -> ModelSpec:
    """The spec of a model name (aliases resolved); KeyError names the known ones."""
    key = ALIASES.get(model, model)
    if key not in SPECS:
        raise KeyError(f"unknown model {model!r}: known {sorted(SPECS) + sorted(ALIASES)}")
    return SPECS[key]
