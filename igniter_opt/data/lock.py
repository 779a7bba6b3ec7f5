"""Exclusive use of a file or folder by one igniter process: a non-blocking flock naming its holder.

`exclusive(path)` takes an exclusive flock on a lock file (for a folder, FOLDER/.igniter.lock) and
writes the holder's pid and command into it; a second process gets an InputError in one line that
names the holder, at once (never a wait). The kernel releases a flock when its process ends, so a
killed holder leaves no stale lock. deploy/run lock their run directory with it; the service
(`igniter serve --state-dir`) can lock its state folder the same way. Like batch's CSV lock, on a
platform without fcntl there is no lock.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from igniter_opt.data.errors import InputError

LOCK_NAME = ".igniter.lock"


def lock_file(path: str | Path) -> Path:
    """The lock file of a folder (FOLDER/.igniter.lock) or of a file (FILE.lock)."""
    path = Path(path)
    return path / LOCK_NAME if path.is_dir() or not path.suffix else path.with_name(path.name + ".lock")


def holder(path: str | Path) -> dict[str, Any] | None:
    """What the lock file says about its holder (pid, command, since), or None."""
    try:
        data = json.loads(lock_file(path).read_text(encoding="utf-8") or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@contextmanager
def exclusive(path: str | Path, what: str = "this folder") -> Iterator[Path]:
    """Hold an exclusive lock on `path` (a folder, created if missing, or a file) while the block
    runs; InputError naming the holder when another process holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock on this platform: no lock
        yield Path(path)
        return
    path = Path(path)
    target = lock_file(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle = target.open("a+", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot create the lock file {target.name} ({exc.strerror})") from None
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            who = holder(path) or {}
            by = f"pid {who.get('pid', '?')} ({who.get('command', '?')})" if who else "another process"
            raise InputError(f"{path}: {what} is in use by {by}; stop it first, or use another folder") from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                                 "since_unix": time.time()}) + "\n")
        handle.flush()
        yield path
    finally:
        handle.close()  # closing releases the flock
