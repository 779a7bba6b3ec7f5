"""Real input data: images -> request tensors (`igniter inputs`), sent round-robin by `--input-data`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import triton_pids

from igniter_opt.data.errors import InputError
from igniter_opt.data.plan import GpuPlan, PlacedWorkload, Plan
from igniter_opt.deploy.backends.local import find_tritonserver
from igniter_opt.deploy.inputs import MEAN, STD, load_payloads, prepare_inputs
from igniter_opt.deploy.models import input_checksum

pytestmark = pytest.mark.extra("deploy")  # Pillow


def image_folder(root: Path) -> Path:
    """Two PNGs (one RGBA, one grayscale), a JPEG, a corrupt PNG and a text file."""
    from PIL import Image

    root.mkdir()
    Image.new("RGBA", (320, 240), (255, 0, 0, 255)).save(root / "a-red.png")
    Image.new("L", (200, 300), 128).save(root / "b-gray.png")
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (180, 260, 3), dtype=np.uint8)).save(root / "c-noise.jpg", quality=90)
    (root / "d-corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10)
    (root / "e-notes.txt").write_text("not an image\n")
    return root


def test_images_become_normalised_tensors_of_the_models_shape(tmp_path):
    result = prepare_inputs(image_folder(tmp_path / "img"), "resnet50", tmp_path / "out")
    assert [p.name for p in result.written] == ["0000-a-red.npy", "0001-b-gray.npy", "0002-c-noise.npy"]
    assert [Path(s).name for s, _ in result.skipped] == ["d-corrupt.png", "e-notes.txt"]
    red, gray, noise = (np.load(p) for p in result.written)
    for x in (red, gray, noise):
        assert x.shape == (3, 224, 224) and x.dtype == np.float32
    np.testing.assert_allclose(red[:, 0, 0], (np.array([1, 0, 0]) - MEAN) / STD, atol=1e-5)
    np.testing.assert_allclose(gray[:, 100, 100], (128 / 255 - MEAN) / STD, atol=1e-5)
    assert len({x.tobytes() for x in (red, gray, noise)}) == 3
    ssd = prepare_inputs(tmp_path / "img", "ssd300_vgg16", tmp_path / "ssd")
    assert np.load(ssd.written[0]).shape == (3, 300, 300)
    shape, payloads = load_payloads(tmp_path / "out")
    assert shape == (3, 224, 224) and payloads[2] == noise.tobytes()


def test_no_images_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no images.*it is empty"):
        prepare_inputs(tmp_path / "empty", "resnet50", tmp_path / "out")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.jpg").write_bytes(b"\xff\xd8 broken")
    with pytest.raises(InputError, match=r"1 file.*none a readable image"):
        prepare_inputs(tmp_path / "junk", "resnet50", tmp_path / "out")
    with pytest.raises(InputError, match="not a folder"):
        prepare_inputs(tmp_path / "nope", "resnet50", tmp_path / "out")
    with pytest.raises(InputError, match=r"no inputs\.json"):
        load_payloads(tmp_path / "empty")
    out = tmp_path / "ok"
    prepare_inputs(image_folder(tmp_path / "img"), "resnet50", out)
    np.save(out / "0001-b-gray.npy", np.zeros((3, 300, 300), np.float32))
    with pytest.raises(InputError, match=r"0001-b-gray.npy: shape \[3, 300, 300\]"):
        load_payloads(out)


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "igniter_opt", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_cli_inputs_warns_per_skipped_file_and_refuses_an_empty_folder(tmp_path):
    done = _cli("inputs", str(image_folder(tmp_path / "img")), "--model", "resnet50", "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert "3 tensor(s) [3, 224, 224] for resnet50" in done.stdout and "2 file(s) skipped" in done.stdout
    warnings = done.stderr.strip().splitlines()
    assert len(warnings) == 2 and "d-corrupt.png" in warnings[0] and "e-notes.txt" in warnings[1]
    (tmp_path / "empty").mkdir()
    done = _cli("inputs", str(tmp_path / "empty"), "--model", "resnet50", "-o", str(tmp_path / "o2"))
    assert done.returncode == 2 and "no images" in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.triton
@pytest.mark.slow
@pytest.mark.skipif(find_tritonserver() is None, reason="no tritonserver (pip install nvidia-pytriton)")
def test_measured_run_sends_the_images(tmp_path):
    """`igniter run --input-data`: the emulated server records the checksum of every distinct input it
    got, and those are exactly the prepared tensors."""
    prepare_inputs(image_folder(tmp_path / "img"), "resnet50", tmp_path / "inputs")
    _, payloads = load_payloads(tmp_path / "inputs")
    plan = Plan("inputs", "test", "v100", "feasible",
                [GpuPlan([PlacedWorkload("cls", "resnet50", batch=2, resource_pct=50.0, rate_rps=20.0, slo_ms=200.0)])])
    plan.save(tmp_path / "plan.json")
    run_dir = (tmp_path / "run").resolve()
    done = _cli("run", str(tmp_path / "plan.json"), "--device", "emulate", "--input-data", str(tmp_path / "inputs"),
                "--duration", "2", "--warmup", "0.5", "--run-dir", str(run_dir), timeout=240)
    assert done.returncode == 0, done.stderr
    assert "input data: 3 tensor(s) [3, 224, 224]" in done.stderr
    seen = set((run_dir / "seen-cls.txt").read_text().split())
    expected = {f"{input_checksum(np.frombuffer(p, np.float32).reshape(3, 224, 224)):06x}" for p in payloads}
    assert seen == expected and len(expected) == 3
    assert triton_pids(run_dir) == []
