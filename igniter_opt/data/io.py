"""Reading and writing the files of the CLI: every failure is an InputError that names the file.

Reading: a folder, a missing or unreadable file, a file (or device, `/dev/zero`) larger than
MAX_INPUT_BYTES, bytes that are not UTF-8, malformed JSON and the
non-standard JSON constants NaN/Infinity (or a number too large for a float) are each one line.
Writing: missing parent folders are created; a path that is a folder, or a parent that is a file
or cannot be created, is one line. JSON is written strictly: a non-finite float becomes null.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from igniter_opt.data.errors import InputError


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


# The largest input file read (instances, plans, profiles): a 10,000-workload instance is ~1.1 MB,
# its plan ~4 MB; more than this is a wrong file, not an input (and would exhaust memory).
MAX_INPUT_BYTES = 64 * 1024 * 1024


def read_text(path: str | Path, what: str = "a file") -> str:
    """The UTF-8 text of a file (a leading BOM is dropped); at most MAX_INPUT_BYTES of it."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_INPUT_BYTES + 1)
        if len(data) > MAX_INPUT_BYTES:
            raise InputError(f"{path}: larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB, the most an input "
                             f"file may hold (is it {what}?)")
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not {what}") from None
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({_why(exc)})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (use a finite number)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is too large")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key[:40]!r} in an object (JSON keeps only the last one)")
        out[key] = value
    return out


def loads_strict(text: str, origin: str) -> Any:
    """Parse standard JSON: no NaN/Infinity, every number finite, no key twice in an object;
    errors name the origin."""
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float,
                          object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise InputError(f"{origin}: malformed JSON at line {exc.lineno} column {exc.colno} ({exc.msg})") from None
    except ValueError as exc:  # NaN/Infinity, a float overflow, an integer of over 4300 digits
        raise InputError(f"{origin}: {exc}") from None
    except RecursionError:
        raise InputError(f"{origin}: JSON nested too deeply") from None


def read_json(path: str | Path, what: str = "a file") -> Any:
    """Read a JSON file strictly (see loads_strict)."""
    return loads_strict(read_text(path, what), str(path))


def strict(data: Any) -> Any:
    """A copy of JSON-like data with every non-finite float replaced by None (JSON null)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: strict(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [strict(v) for v in data]
    return data


def dumps(data: Any, indent: int | None = 2) -> str:
    """Strict JSON text (never NaN or Infinity)."""
    return json.dumps(strict(data), indent=indent, allow_nan=False)


def output_file(path: str | Path) -> Path:
    """Check an output file path before the work starts: create its missing parent folders.

    InputError when the path is a folder or its parent cannot be a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give a file name")
    output_dir(path.parent, what=str(path))
    return path


def output_dir(path: str | Path, what: str = "", create: bool = True) -> Path:
    """Create a folder (and its parents) for output; InputError when it cannot be one.

    With create=False only check (nothing on the path is a file), for a command that validates
    more of its input before it writes anything.
    """
    path = Path(path)
    label = what or str(path)
    for parent in (path, *path.parents):
        if parent.exists() and not parent.is_dir():
            where = "" if parent == path else f"{parent} "
            raise InputError(f"{label}: {where}is a file, not a folder")
        if parent.exists():
            break
    if not create:
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{label}: cannot create the folder ({_why(exc)})") from None
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write a text file, creating missing parent folders; InputError naming the file on failure."""
    path = output_file(path)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({_why(exc)})") from None
    return path


def write_json(path: str | Path, data: Any) -> Path:
    """Write strict JSON (see dumps) with a final newline."""
    return write_text(path, dumps(data) + "\n")
