"""CUDA-event timing of torchvision DNNs, run inside a worker process (torch is imported lazily).

A worker is started with its MPS share in the environment, builds its DNNs with weights=None (no
download; timing does not depend on weights), captures one CUDA graph per batch (so the GPU time
measured is the DNN's, not the Python launcher's; `graphs=False` times eager PyTorch instead), and
then times back-to-back inferences with CUDA events, two in flight, so the GPU never waits for the
host and each event pair brackets exactly one inference.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from igniter_opt.data.dnn import DNNS, SSD_CLASSES
from igniter_opt.profiling.kernels import kernels_from_chrome_trace

INPUT_SHAPES = {name: spec.input_dims for name, spec in DNNS.items()}
MARKER_CYCLES = 1000  # torch.cuda._sleep marker kernel between models in an ncu run


def io_bytes(name: str) -> tuple[int, int]:
    """(input, output) bytes of one request on the wire (float32), e.g. 602112 and 4000 for ResNet-50."""
    spec = DNNS[name]
    return spec.input_bytes, spec.output_bytes


def wait_until(t: float | None) -> None:
    """Sleep until time.monotonic() reaches t (a common start for co-located workers)."""
    if t is not None:
        delay = t - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def build_forward(name: str, dtype: Any, device: str = "cuda") -> Any:
    """The DNN as a callable on a batch tensor (SSD: backbone + head, raw boxes and scores, no NMS)."""
    import torch
    import torchvision

    if name == "ssd":
        net = torchvision.models.detection.ssd300_vgg16(weights=None, weights_backbone=None,
                                                        num_classes=SSD_CLASSES).eval().to(device, dtype)

        def forward(x: Any) -> Any:
            head = net.head(list(net.backbone(x).values()))
            return torch.cat([head["bbox_regression"], head["cls_logits"]], dim=2)
        return forward
    return getattr(torchvision.models, name)(weights=None).eval().to(device, dtype)


class Runner:
    """One DNN prepared at several batch sizes (a CUDA graph each, or eager)."""

    def __init__(self, name: str, batches: list[int], dtype: str = "float32", graphs: bool = True,
                 transfer: bool = False) -> None:
        import torch

        self.torch, self.name, self.transfer = torch, name, transfer
        self.dtype = getattr(torch, dtype)
        torch.backends.cudnn.benchmark = True
        self.fwd = build_forward(name, self.dtype)
        self.inputs: dict[int, Any] = {}
        self.outputs: dict[int, Any] = {}
        self.graphs: dict[int, Any] = {}
        self.graph_error = ""
        with torch.no_grad():
            for b in batches:
                x = torch.randn((b, *INPUT_SHAPES[name]), device="cuda", dtype=self.dtype)
                self.inputs[b] = x
                side = torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    for _ in range(3):
                        self.outputs[b] = self.fwd(x)
                torch.cuda.current_stream().wait_stream(side)
                if graphs:
                    try:
                        g = torch.cuda.CUDAGraph()
                        with torch.cuda.graph(g):
                            self.outputs[b] = self.fwd(x)
                        self.graphs[b] = g
                    except Exception as exc:  # fall back to eager, say why
                        self.graph_error = repr(exc)
        if transfer:
            self.host_in = {b: torch.randn((b, *INPUT_SHAPES[name])).pin_memory() for b in batches}
            self.host_out = {b: [torch.empty(self.outputs[b].shape, dtype=self.outputs[b].dtype).pin_memory()
                                 for _ in range(2)] for b in batches}
            self.stage = {b: [torch.empty_like(self.inputs[b], dtype=torch.float32) for _ in range(2)]
                          for b in batches}
        torch.cuda.synchronize()

    def forward(self, b: int) -> None:
        """One inference at batch b (graph replay or eager), enqueued on the current stream."""
        if b in self.graphs:
            self.graphs[b].replay()
        else:
            with self.torch.no_grad():
                self.outputs[b] = self.fwd(self.inputs[b])

    def time_loop(self, b: int, seconds: float, start_at: float | None = None) -> dict[str, Any]:
        """Back-to-back inferences for `seconds`: per-inference GPU latency (ms) and host end times."""
        torch = self.torch
        wait_until(start_at)
        lat, ends = [], []
        pending: deque = deque()
        t0 = time.monotonic()
        deadline = t0 + seconds

        def enqueue() -> tuple[Any, Any]:
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            self.forward(b)
            e.record()
            return s, e

        pending.append(enqueue())
        while pending:
            if time.monotonic() < deadline:
                pending.append(enqueue())
            s, e = pending.popleft()
            e.synchronize()
            ends.append(time.monotonic())
            lat.append(s.elapsed_time(e))
        return {"lat_ms": lat, "end_t": ends, "t_start": t0, "t_end": ends[-1]}

    def transfer_loop(self, b: int, seconds: float, start_at: float | None = None) -> dict[str, Any]:
        """Serving-like loop: input H2D on a copy stream overlapping the previous inference, then the
        DNN and the output D2H. Per inference: end-to-end latency (H2D + DNN + D2H) and GPU latency."""
        torch = self.torch
        wait_until(start_at)
        copy = torch.cuda.Stream()
        main = torch.cuda.current_stream()
        consumed: list[Any] = [None, None]
        lat, gpu, ends = [], [], []
        pending: deque = deque()
        t0 = time.monotonic()
        deadline = t0 + seconds
        i = 0

        def enqueue(j: int) -> list[Any]:
            ev = [torch.cuda.Event(enable_timing=True) for _ in range(5)]
            with torch.cuda.stream(copy):
                if consumed[j] is not None:
                    copy.wait_event(consumed[j])
                ev[0].record(copy)
                self.stage[b][j].copy_(self.host_in[b], non_blocking=True)
                ev[1].record(copy)
            main.wait_event(ev[1])
            ev[2].record(main)
            self.inputs[b].copy_(self.stage[b][j])
            consumed[j] = torch.cuda.Event()
            consumed[j].record(main)
            self.forward(b)
            ev[3].record(main)
            self.host_out[b][j].copy_(self.outputs[b], non_blocking=True)
            ev[4].record(main)
            return ev

        pending.append(enqueue(0))
        while pending:
            if time.monotonic() < deadline:
                i += 1
                pending.append(enqueue(i % 2))
            ev = pending.popleft()
            ev[4].synchronize()
            ends.append(time.monotonic())
            lat.append(ev[0].elapsed_time(ev[1]) + ev[2].elapsed_time(ev[4]))
            gpu.append(ev[2].elapsed_time(ev[3]))
        return {"lat_ms": lat, "gpu_ms": gpu, "end_t": ends, "t_start": t0, "t_end": ends[-1]}

    def trace(self, b: int, iters: int, start_at: float | None = None) -> dict[str, Any]:
        """Kernel start/end times (us) of `iters` synchronised inferences, from torch.profiler."""
        torch = self.torch
        from torch.profiler import ProfilerActivity, profile

        wait_until(start_at)
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(iters):
                self.forward(b)
                torch.cuda.synchronize()
        fd, path = tempfile.mkstemp(suffix=".json", prefix="igniter-trace-")
        os.close(fd)
        try:
            prof.export_chrome_trace(path)
            trace = kernels_from_chrome_trace(Path(path))
        finally:
            Path(path).unlink(missing_ok=True)
        return {"iters": iters, **trace.to_lists()}

    def ncu_pass(self, b: int, reps: int) -> None:
        """Marker kernel, then `reps` synchronised inferences (inside cudaProfilerStart/Stop)."""
        torch = self.torch
        torch.cuda._sleep(MARKER_CYCLES)
        torch.cuda.synchronize()
        for _ in range(reps):
            self.forward(b)
            torch.cuda.synchronize()


def device_facts() -> dict[str, Any]:
    """SM count, name and versions of the current CUDA device (inside a worker)."""
    import torch
    import torchvision

    props = torch.cuda.get_device_properties(0)
    return {"device": props.name, "sm_count": int(props.multi_processor_count), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "cuda": torch.version.cuda}


def h2d_bandwidth(nbytes: int = 64 << 20, reps: int = 8) -> dict[str, Any]:
    """Pinned and pageable host-to-device copy times (ms) of `nbytes`, timed with CUDA events."""
    import torch

    dev = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    out: dict[str, Any] = {"bytes": nbytes}
    for kind, host in (("pinned", torch.empty(nbytes, dtype=torch.uint8).pin_memory()),
                       ("pageable", torch.from_numpy(np.ones(nbytes, dtype=np.uint8)))):
        times = []
        for _ in range(reps):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            dev.copy_(host, non_blocking=(kind == "pinned"))
            e.record()
            e.synchronize()
            times.append(s.elapsed_time(e))
        out[kind] = times
    return out
