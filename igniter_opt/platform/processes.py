"""Process helpers shared by the batch runner, deploy and profiling: one each.

- `sigterm_as_interrupt`: while open (main thread only), SIGTERM (and the other given signals)
  raise KeyboardInterrupt, so a killed command cleans up exactly as on Ctrl-C.
- `kill_and_reap`: SIGTERM a child, SIGKILL it if it is still there after a grace period, and
  always reap it (a subprocess.Popen or a multiprocessing process).
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

__all__ = ["kill_and_reap", "sigterm_as_interrupt"]


@contextmanager
def sigterm_as_interrupt(signals: Sequence[int] = (signal.SIGTERM, signal.SIGHUP)) -> Iterator[None]:
    """While open (main thread only), the signals raise KeyboardInterrupt like Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, h in old.items():
            if h is not None:  # None: a handler not installed from Python, nothing to restore
                signal.signal(s, h)


def kill_and_reap(proc: subprocess.Popen[Any] | BaseProcess, grace_s: float = 1.0) -> None:
    """SIGTERM, then SIGKILL if the process is still there `grace_s` later; always reaped."""
    if isinstance(proc, subprocess.Popen):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        return
    if proc.is_alive():
        proc.terminate()
        proc.join(timeout=grace_s)
    if proc.is_alive():
        proc.kill()
    proc.join(timeout=5.0)
