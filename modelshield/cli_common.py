"""What every command shares: one-line errors, policy loading, source options, output writing."""
from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Iterable, NoReturn, Optional

import typer

from modelshield import Policy, PolicyError, SourceOptions
from modelshield.scanner.findings import Severity


class FailOn(str, enum.Enum):
    critical = "critical"
    high = "high"
    medium = "medium"
    low = "low"


def error(message: str) -> None:
    """One line on stderr."""
    typer.echo(f"modelshield: error: {message}", err=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr, then exit (2: incomplete, bad input or usage)."""
    error(message)
    raise typer.Exit(code)


def load_policy(path: Optional[Path], fail_on: Optional[FailOn]) -> Policy:
    """The policy file (given, or found upward), with --fail-on applied over it."""
    try:
        policy = Policy.load(path)
    except PolicyError as exc:
        fail(str(exc))
    if fail_on is not None:
        policy.fail_on = Severity.parse(fail_on.value)
    return policy


def source_options(include: list[str], exclude: list[str], max_download: Optional[str], offline: bool,
                   cache_dir: Optional[Path]) -> SourceOptions:
    """SourceOptions from the shared remote-source flags."""
    try:
        size = parse_size(max_download)
    except ValueError as exc:
        fail(str(exc))
    return SourceOptions(include=include, exclude=exclude, max_download=size, offline=True if offline else None,
                         cache_dir=str(cache_dir) if cache_dir else None)


def write_output(text: str | Iterable[str], output: Optional[Path]) -> None:
    """Write to `output`, or stdout for None or "-"; `text` may come in pieces (a streamed report)."""
    chunks = [text] if isinstance(text, str) else text
    if output is None or str(output) == "-":
        for chunk in chunks:
            try:
                sys.stdout.write(chunk)
            except UnicodeEncodeError:  # a stdout encoding that cannot show some artefact text
                sys.stdout.flush()
                sys.stdout.buffer.write(chunk.encode(sys.stdout.encoding or "utf-8", "backslashreplace"))
        return
    try:
        with open(output, "w", encoding="utf-8", errors="backslashreplace") as fh:
            for chunk in chunks:
                fh.write(chunk)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")


def parse_size(text: Optional[str]) -> Optional[int]:
    """'500MB', '2GiB', '1024' -> bytes."""
    if text is None:
        return None
    units = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
             "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
    raw = text.strip().lower().replace(" ", "")
    number = raw.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = raw[len(number):]
    if unit not in units or not number:
        raise ValueError(f"cannot read size {text!r} (e.g. 500MB, 2GiB)")
    try:
        return int(float(number) * units[unit])
    except ValueError:
        raise ValueError(f"cannot read size {text!r} (e.g. 500MB, 2GiB)") from None
