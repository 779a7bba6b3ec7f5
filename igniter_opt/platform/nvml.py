"""NVML (nvidia-ml-py): GPU facts and a background sampler of power, SM clock and utilisation.

`pynvml` is imported lazily, so this module imports (and `nvml_available()` answers False) on
hosts without the package or without a GPU.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Reading = tuple[float, float, float]  # power W, SM clock MHz, GPU utilisation %


def _pynvml() -> Any:
    import pynvml  # optional dependency: the `deploy` extra

    return pynvml


def gpu_count() -> int:
    """How many GPUs NVML sees (NVML must load: see nvml_available)."""
    nv = _pynvml()
    nv.nvmlInit()
    try:
        return int(nv.nvmlDeviceGetCount())
    finally:
        nv.nvmlShutdown()


def nvml_available() -> bool:
    """True when NVML loads and reports at least one GPU."""
    try:
        nv = _pynvml()
        nv.nvmlInit()
    except Exception:  # ImportError, NVMLError (no driver), OSError
        return False
    try:
        return nv.nvmlDeviceGetCount() > 0
    except Exception:
        return False
    finally:
        try:
            nv.nvmlShutdown()
        except Exception:
            pass


@dataclass
class GpuInfo:
    """Static facts of one GPU."""

    name: str
    max_sm_clock_mhz: float
    power_limit_w: float
    memory_mib: float


def gpu_info(index: int = 0) -> GpuInfo:
    """Name, max SM clock, enforced power limit and memory of GPU `index` (needs a GPU)."""
    nv = _pynvml()
    nv.nvmlInit()
    try:
        h = nv.nvmlDeviceGetHandleByIndex(index)
        name = nv.nvmlDeviceGetName(h)
        name = name.decode() if isinstance(name, bytes) else str(name)
        return GpuInfo(
            name=name,
            max_sm_clock_mhz=float(nv.nvmlDeviceGetMaxClockInfo(h, nv.NVML_CLOCK_SM)),
            power_limit_w=nv.nvmlDeviceGetEnforcedPowerLimit(h) / 1000.0,
            memory_mib=nv.nvmlDeviceGetMemoryInfo(h).total / 2**20,
        )
    finally:
        nv.nvmlShutdown()


def _stats(values: np.ndarray) -> dict[str, float | None]:
    if values.size == 0:
        return {"mean": None, "max": None, "min": None}
    return {"mean": float(values.mean()), "max": float(values.max()), "min": float(values.min())}


@dataclass
class GpuSamples:
    """Time series sampled by GpuSampler (t in seconds since the sampler started)."""

    t: np.ndarray = field(default_factory=lambda: np.zeros(0))
    power_w: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sm_clock_mhz: np.ndarray = field(default_factory=lambda: np.zeros(0))
    util_pct: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def summary(self) -> dict[str, Any]:
        """{"samples": n, "power_w"|"sm_clock_mhz"|"util_pct": {"mean","max","min"}}."""
        return {"samples": int(self.t.size), "power_w": _stats(self.power_w),
                "sm_clock_mhz": _stats(self.sm_clock_mhz), "util_pct": _stats(self.util_pct)}


class GpuSampler:
    """Context manager: a thread samples GPU `index` every `interval_s` until exit.

    `reader` replaces NVML with any callable returning (power W, SM MHz, util %); it exists so the
    thread's life cycle can be tested without a GPU. The thread is always joined on exit.
    """

    def __init__(self, index: int = 0, interval_s: float = 0.1,
                 reader: Callable[[], Reading] | None = None) -> None:
        self.index = index
        self.interval_s = interval_s
        self._reader = reader
        self._rows: list[tuple[float, float, float, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._nv: Any = None
        self.error: str | None = None

    def _nvml_reader(self) -> Callable[[], Reading]:
        nv = self._nv
        h = nv.nvmlDeviceGetHandleByIndex(self.index)

        def read() -> Reading:
            return (nv.nvmlDeviceGetPowerUsage(h) / 1000.0,
                    float(nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)),
                    float(nv.nvmlDeviceGetUtilizationRates(h).gpu))
        return read

    def __enter__(self) -> GpuSampler:
        if self._reader is None:
            self._nv = _pynvml()
            self._nv.nvmlInit()
            try:
                self._reader = self._nvml_reader()
            except Exception:
                self._nv.nvmlShutdown()
                raise
        self._thread = threading.Thread(target=self._run, name="gpu-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        t0 = time.monotonic()
        assert self._reader is not None
        while True:
            try:
                p, f, u = self._reader()
                self._rows.append((time.monotonic() - t0, p, f, u))
            except Exception as exc:  # keep sampling; remember why a sample was lost
                self.error = repr(exc)
            if self._stop.wait(self.interval_s):
                return

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._nv is not None:
            try:
                self._nv.nvmlShutdown()
            finally:
                self._nv = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def samples(self) -> GpuSamples:
        """What has been sampled so far, as numpy arrays."""
        rows = np.array(list(self._rows), dtype=float).reshape(-1, 4)
        return GpuSamples(t=rows[:, 0], power_w=rows[:, 1], sm_clock_mhz=rows[:, 2], util_pct=rows[:, 3])
