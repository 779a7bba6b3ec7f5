"""Worker processes: one MPS client each, driven over JSON lines on stdin/stdout.

The share of an MPS client is fixed when its CUDA context is created, so every share needs its own
process. `python -m igniter_opt.profiling.worker --models ... --batches ...` prepares its DNNs, says
{"ready": ...} and then answers one JSON line per command:
  {"op": "time", "model", "batch", "seconds", "start_at"}   back-to-back CUDA-event timing
  {"op": "transfer", ...same}                               serving-like loop with H2D/D2H
  {"op": "trace", "model", "batch", "iters", "start_at"}    torch.profiler kernel trace
  {"op": "bandwidth"}  {"op": "quit"}
`--ncu-pass` instead runs each model's marker + inferences between cudaProfilerStart/Stop and exits
(the program that ncu profiles). The parent side is `WorkerProcess`.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from igniter_opt.platform.processes import kill_and_reap

PROTOCOL_FD_ENV = "IGNITER_WORKER"


class WorkerError(RuntimeError):
    """A worker died, timed out or answered with an error."""


def _serve(args: argparse.Namespace, proto: IO[str]) -> None:
    import torch

    from igniter_opt.profiling import timing  # imports torch lazily

    def say(obj: dict[str, Any]) -> None:
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    t0 = time.monotonic()
    runners = {m: timing.Runner(m, args.batches, args.dtype, graphs=not args.eager, transfer=args.transfer)
               for m in args.models}
    say({"ready": True, "setup_s": time.monotonic() - t0, **timing.device_facts(),
         "graphs": {m: sorted(r.graphs) for m, r in runners.items()},
         "graph_errors": {m: r.graph_error for m, r in runners.items() if r.graph_error},
         "io_bytes": {m: timing.io_bytes(m) for m in args.models}})
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        op = cmd.get("op")
        try:
            if op == "quit":
                say({"ok": True})
                return
            if op == "bandwidth":
                say({"ok": True, **timing.h2d_bandwidth()})
                continue
            r = runners[cmd["model"]]
            if op == "time":
                say({"ok": True, **r.time_loop(cmd["batch"], cmd["seconds"], cmd.get("start_at"))})
            elif op == "transfer":
                say({"ok": True, **r.transfer_loop(cmd["batch"], cmd["seconds"], cmd.get("start_at"))})
            elif op == "trace":
                say({"ok": True, **r.trace(cmd["batch"], cmd["iters"], cmd.get("start_at"))})
            else:
                say({"ok": False, "error": f"unknown op {op!r}"})
        except Exception as exc:  # report, keep serving
            try:
                torch.cuda.synchronize()
            except Exception:
                pass
            say({"ok": False, "error": repr(exc)})


def _ncu_pass(args: argparse.Namespace) -> None:
    import torch

    from igniter_opt.profiling import timing

    (batch,) = args.batches
    runners = [timing.Runner(m, [batch], args.dtype, graphs=not args.eager) for m in args.models]
    torch.cuda.synchronize()
    torch.cuda.profiler.start()
    for r in runners:
        r.ncu_pass(batch, args.reps)
    torch.cuda.profiler.stop()


def worker_argv(models: list[str], batches: list[int], dtype: str = "float32", eager: bool = False,
                transfer: bool = False, ncu_reps: int = 0) -> list[str]:
    """Command line of a worker (an ncu pass when ncu_reps > 0)."""
    argv = [sys.executable, "-m", "igniter_opt.profiling.worker", "--models", ",".join(models),
            "--batches", ",".join(str(b) for b in batches), "--dtype", dtype]
    argv += ["--eager"] if eager else []
    argv += ["--transfer"] if transfer else []
    argv += ["--ncu-pass", "--reps", str(ncu_reps)] if ncu_reps > 0 else []
    return argv


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=lambda s: s.split(","), required=True)
    parser.add_argument("--batches", type=lambda s: [int(b) for b in s.split(",")], required=True)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--eager", action="store_true")
    parser.add_argument("--transfer", action="store_true")
    parser.add_argument("--ncu-pass", action="store_true")
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args(argv)
    if args.ncu_pass:
        _ncu_pass(args)
        return
    # the protocol owns the real stdout; anything else printed (warnings, libraries) goes to stderr
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    _serve(args, proto)


@dataclass
class WorkerProcess:
    """Parent-side handle of one worker: start it, wait until ready, send commands, read answers."""

    key: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen | None = None
    ready: dict[str, Any] = field(default_factory=dict)

    def start(self) -> WorkerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")  # closed in close()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     env={**os.environ, **self.env}, text=True, bufsize=1)
        return self

    def _tail(self) -> str:
        try:
            return " | ".join(self.log_path.read_text().strip().splitlines()[-3:])
        except OSError:
            return ""

    def recv(self, timeout_s: float) -> dict[str, Any]:
        """One answer line, or WorkerError after timeout_s or when the worker died."""
        assert self.proc is not None and self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            if not sel.select(timeout_s):
                raise WorkerError(f"worker {self.key}: no answer within {timeout_s:.0f} s ({self._tail()})")
        finally:
            sel.close()
        line = self.proc.stdout.readline()
        if not line:
            raise WorkerError(f"worker {self.key} exited ({self.proc.poll()}): {self._tail()}")
        answer = json.loads(line)
        if answer.get("ok") is False:
            raise WorkerError(f"worker {self.key}: {answer.get('error')}")
        return answer

    def wait_ready(self, timeout_s: float) -> dict[str, Any]:
        self.ready = self.recv(timeout_s)
        return self.ready

    def send(self, cmd: dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise WorkerError(f"worker {self.key} is gone: {self._tail()}") from None

    def request(self, cmd: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        self.send(cmd)
        return self.recv(timeout_s)

    def close(self) -> None:
        """Ask the worker to quit, then terminate it if it does not (always reaped)."""
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                self.send({"op": "quit"})
                self.proc.wait(timeout=10)
        except (WorkerError, subprocess.TimeoutExpired, OSError, ValueError):
            kill_and_reap(self.proc, grace_s=5.0)
        finally:
            self._log.close()
            self.proc = None


def run_together(workers: list[WorkerProcess], cmds: list[dict[str, Any]], timeout_s: float) -> list[dict[str, Any]]:
    """Send one command to each worker, then collect every answer (they run concurrently)."""
    for w, c in zip(workers, cmds):
        w.send(c)
    return [w.recv(timeout_s) for w in workers]


if __name__ == "__main__":
    main()
