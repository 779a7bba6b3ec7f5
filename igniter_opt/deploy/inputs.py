"""Real input data: a folder of images -> request tensors of a model's input shape, and back.

`prepare_inputs` (what `igniter inputs DIR --model M -o OUT` runs) opens every file of DIR with
Pillow in name order and makes one FP32 CHW tensor per image, the torchvision way:
- classifiers (input [3, 224, 224]): shorter side resized to 256, center crop 224 x 224;
- SSD (input [3, 300, 300]): resized to 300 x 300 (torchvision's SSD300 transform, no crop);
then scaled to [0, 1] and normalised with ImageNet's mean (0.485, 0.456, 0.406) and std
(0.229, 0.224, 0.225). Shapes come from the project's model table (data/dnn.py). Tensors go to
OUT/NNNN-<name>.npy with OUT/inputs.json (model, shape, files, skipped). A file Pillow cannot read
is skipped with a warning naming it; a folder without one readable image is an InputError.

`load_payloads` reads such a folder back as raw request bytes (batch 1), which the load generator
sends round-robin (`--input-data`, load.protocol.Target.payloads).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from igniter_opt.data.dnn import spec_for
from igniter_opt.data.errors import InputError

MANIFEST = "inputs.json"
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@dataclass
class PreparedInputs:
    """What `prepare_inputs` wrote and what it skipped (file, reason)."""

    model: str
    shape: tuple[int, ...]
    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def image_tensor(image: object, model: str) -> np.ndarray:
    """One PIL image -> the model's normalised FP32 CHW input (module docstring)."""
    from PIL import Image

    assert isinstance(image, Image.Image)
    spec = spec_for(model)
    _, height, width = spec.input_dims
    img = image.convert("RGB")
    if spec.name == "ssd":
        img = img.resize((width, height), Image.Resampling.BILINEAR)
    else:
        short = round(height * 256 / 224)
        w, h = img.size
        scale = short / min(w, h)
        size = (max(width, math.ceil(w * scale)), max(height, math.ceil(h * scale)))
        img = img.resize(size, Image.Resampling.BILINEAR)
        left, top = (img.size[0] - width) // 2, (img.size[1] - height) // 2
        img = img.crop((left, top, left + width, top + height))
    x = np.asarray(img, dtype=np.float32) / 255.0
    x = (x - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def prepare_inputs(src: str | Path, model: str, out: str | Path) -> PreparedInputs:
    """Turn every readable image of `src` into a tensor file in `out` (InputError when there is none)."""
    from PIL import Image, UnidentifiedImageError

    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise InputError(f"{src}: not a folder of images")
    try:
        spec = spec_for(model)
    except KeyError as exc:
        raise InputError(f"--model: {exc.args[0]}") from None
    if len(spec.input_dims) != 3 or spec.input_dims[0] != 3:
        raise InputError(f"--model {model}: input {list(spec.input_dims)} is not an image")
    files = sorted(p for p in src.iterdir() if p.is_file() and not p.name.startswith("."))
    result = PreparedInputs(model=spec.name, shape=spec.input_dims)
    tensors = []
    for path in files:
        try:
            with Image.open(path) as img:
                img.load()
                tensors.append((path, image_tensor(img, spec.name)))
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            result.skipped.append((str(path), f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))
    if not tensors:
        what = f"{len(files)} file(s), none a readable image" if files else "it is empty"
        raise InputError(f"{src}: no images to make inputs from ({what})")
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.npy"):
        old.unlink()
    for i, (path, x) in enumerate(tensors):
        target = out / f"{i:04d}-{path.stem}.npy"
        np.save(target, x)
        result.written.append(target)
    manifest = {"model": spec.name, "shape": list(spec.input_dims), "files": [p.name for p in result.written],
                "sources": [str(p) for p, _ in tensors], "skipped": [list(s) for s in result.skipped]}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return result


def load_payloads(folder: str | Path) -> tuple[tuple[int, ...], tuple[bytes, ...]]:
    """A prepared folder's input shape and its tensors as raw FP32 bytes (batch 1), in order."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.exists():
        raise InputError(f"--input-data {folder}: no {MANIFEST} (make it with `igniter inputs IMAGES --model M "
                         f"-o {folder}`)")
    try:
        manifest = json.loads(path.read_text())
        shape = tuple(int(d) for d in manifest["shape"])
        names = [str(n) for n in manifest["files"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not an inputs manifest ({exc})") from None
    payloads = []
    for name in names:
        try:
            x = np.load(folder / name, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"{folder / name}: cannot be read ({exc})") from None
        if x.shape != shape or x.dtype != np.float32:
            raise InputError(f"{folder / name}: shape {list(x.shape)} {x.dtype}, expected {list(shape)} float32")
        payloads.append(np.ascontiguousarray(x[None]).tobytes())
    if not payloads:
        raise InputError(f"{path}: lists no tensors")
    return shape, tuple(payloads)
