"""What the load generator (generator.py) and its worker processes (worker.py) share: the
targets, options and shards they pass, and the pipe protocol between them.

Protocol on the worker's stdin/stdout, each message a pickle preceded by its 8-byte length:
parent -> (shards, options); worker -> READY once connected (one request per workload answered);
parent -> start time (time.time()); worker -> ("progress", [chunks]) every `progress_s` when that
is > 0 (each chunk {"name", "arrivals", "done", "ok"}: the requests completed since the last one,
times in seconds since the start), then ("ok", [per-shard dicts]) or ("error", message).

Endpoint following: with `follow` set to an endpoints.json path, a worker re-reads that file when it
changes and sends each workload's requests to the gRPC address its entry names now (a switch to a
shadow server rewrites the entry; the model name and request bytes stay the same).
"""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

DISTRIBUTIONS = ("constant", "poisson")


class LoadError(RuntimeError):
    """The load could not be generated (a worker failed, or could not reach its server)."""


@dataclass(frozen=True)
class Target:
    """One workload to drive: where its server is, its model's input and the offered rate."""

    name: str
    model_name: str
    url: str
    rate_rps: float
    slo_ms: float
    input_dims: tuple[int, ...]
    follow_url: str | None = None     # an `igniter serve` endpoint resource: switch servers when it changes
    follow_token: str | None = None   # its bearer token
    payloads: tuple[bytes, ...] = ()  # request tensors sent round-robin (raw FP32, batch 1); () = ones


@dataclass(frozen=True)
class LoadOptions:
    """Length of the run, arrival process and how the load is spread over processes."""

    duration_s: float = 10.0
    warmup_s: float = 2.0
    distribution: str = "constant"
    seed: int = 0
    drain_s: float = 5.0
    timeout_s: float = 10.0
    max_rps_per_process: float = 2000.0
    processes: int | None = None      # default: min(shards, CPUs)
    progress_s: float = 0.0           # > 0: workers stream completions this often (live monitoring)
    follow: str | None = None         # an endpoints.json to follow (switches to shadow servers)

    def __post_init__(self) -> None:
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {self.distribution!r}")
        if self.duration_s <= 0 or self.warmup_s < 0:
            raise ValueError("duration must be > 0 and warm-up >= 0")
        if self.duration_s + self.warmup_s > MAX_SECONDS:
            raise ValueError(f"--duration {self.duration_s:g} s plus --warmup {self.warmup_s:g} s: more than the "
                             f"load generator's {MAX_SECONDS // 3600} h")


# The load generator precomputes every arrival time (8 bytes each, per workload): more than this
# many arrivals in one run is refused up front instead of exhausting memory.
MAX_ARRIVALS = 20_000_000
MAX_SECONDS = 24 * 3600


def check_load_size(rates: dict[str, float], options: LoadOptions) -> None:
    """ValueError naming the workload when rate x (warm-up + duration) passes MAX_ARRIVALS."""
    seconds = options.duration_s + options.warmup_s
    total = 0.0
    for name, rate in rates.items():
        total += rate * seconds
        if rate * seconds > MAX_ARRIVALS or total > MAX_ARRIVALS:
            raise ValueError(f"workload {name!r}: {rate:g} req/s for {seconds:g} s is more arrivals than the load "
                             f"generator holds ({MAX_ARRIVALS:,} per run); shorten --duration")


@dataclass(frozen=True)
class Shard:
    """A part of one target's stream, driven by one worker process."""

    target: Target
    arrivals: np.ndarray


READY = b"READY\n"


def send(stream: IO[bytes], obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def recv(stream: IO[bytes], head: bytes = b"") -> Any:
    header = head + stream.read(8 - len(head))
    if len(header) < 8:
        raise EOFError("load worker pipe closed")
    (n,) = struct.unpack("<Q", header)
    return pickle.loads(stream.read(n))
