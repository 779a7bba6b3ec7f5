"""The launcher interface: start one Triton server per workload, stop everything it started.

The records it passes (ServerSpec, Endpoint, LaunchError) are in deploy/types.py."""

from __future__ import annotations

import socket
import sys
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable

from igniter_opt.deploy.types import Endpoint, LaunchError, ServerSpec


def free_port() -> int:
    """A TCP port free on this host right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SAY_WAITING_S = 10.0


def wait_ready(http_url: str, timeout_s: float, alive: Callable[[], bool] = lambda: True,
               what: str = "server") -> None:
    """Poll GET {http_url}/v2/health/ready until 200; LaunchError on timeout or when `alive` fails.

    A wait past SAY_WAITING_S says so on stderr once (with the bound), so a slow start is visible."""
    start = time.monotonic()
    deadline = start + timeout_s
    said = False
    while time.monotonic() < deadline:
        if not said and time.monotonic() - start > SAY_WAITING_S:
            print(f"waiting for {what} to be ready (at most {timeout_s:g} s)", file=sys.stderr, flush=True)
            said = True
        if not alive():
            raise LaunchError(f"{what} exited before it was ready")
        try:
            with urllib.request.urlopen(f"{http_url}/v2/health/ready", timeout=1.0) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.1)
    raise LaunchError(f"{what} not ready after {timeout_s:g} s ({http_url}/v2/health/ready)")


class Launcher(ABC):
    """Starts servers one by one; `stop_all` (also run on context exit) stops every one started."""

    backend: str = ""

    @abstractmethod
    def start(self, spec: ServerSpec) -> Endpoint:
        """Start a server for `spec` and return once it is ready (LaunchError otherwise)."""

    def start_all(self, specs: list[ServerSpec]) -> list[Endpoint]:
        """Start every spec (in order; launchers may overlap the start-ups)."""
        return [self.start(spec) for spec in specs]

    @abstractmethod
    def stop_all(self) -> None:
        """Stop every server this launcher started (idempotent, never raises for a gone server)."""

    def __enter__(self) -> Launcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()
