"""`modelshield store` (stats, export, gc) and the scan's --store/--no-store handling.

    modelshield store stats [--store SPEC]
    modelshield store export results.jsonl [--store SPEC]
    modelshield store gc --older-than 90d [--other-engines]

Thin: the logic lives in `modelshield.scanner.store`.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from modelshield.cli_common import fail
from modelshield.scanner.output import escape

if TYPE_CHECKING:
    from modelshield.scanner.findings import Report
    from modelshield.scanner.store import ResultStore

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="The result store: analyses by content hash, reused by later scans.",
                  epilog="\b\nExamples:\n  modelshield store stats\n  modelshield store export results.jsonl\n"
                         "  modelshield store gc --older-than 90d")

STORE_HELP = ("Result store: a sqlite file or postgresql:// URL (default: results.sqlite in the user cache dir, "
              "or MODELSHIELD_STORE).")


def open_for_scan(spec: Optional[str], disabled: bool) -> Optional["ResultStore"]:
    """The store a scan uses: None with --no-store (or MODELSHIELD_STORE=off). A store named
    explicitly that cannot be opened is exit 2 for Postgres (a shared store is not silently
    dropped) and a warning for sqlite; the default store failing is a warning: the scan goes on
    without it."""
    from modelshield.scanner import env
    from modelshield.scanner.errors import StoreError
    from modelshield.scanner.store import open_store

    spec = spec or env.store()
    if disabled or (spec or "").lower() in ("off", "none", "0", "false", "no"):
        return None
    try:
        return open_store(spec)
    except StoreError as exc:
        if spec and spec.startswith(("postgresql://", "postgres://")):
            fail(str(exc))
        warn(f"{exc}; scanning without it")
        return None


def warn(message: str) -> None:
    """`modelshield: warning: MESSAGE` on stderr."""
    typer.echo(f"modelshield: warning: {escape.text(message)}", err=True)


def _open(spec: Optional[str]) -> "ResultStore":
    from modelshield.scanner import env
    from modelshield.scanner.errors import StoreError
    from modelshield.scanner.store import open_store

    try:
        return open_store(spec or env.store())
    except StoreError as exc:
        fail(str(exc))


@app.command(epilog="\b\nExamples:\n  modelshield store stats\n  modelshield store stats --json --store postgresql://scanner@db/ms")
def stats(store: Optional[str] = typer.Option(None, "--store", help=STORE_HELP),
          as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Entries, distinct hashes, engines, policies and sizes of the store."""
    from modelshield.scanner.errors import StoreError
    from modelshield.scanner.store import engine_digest

    with _open(store) as db:
        try:
            data = db.stats()
        except StoreError as exc:
            fail(str(exc))
    data["current_engine"] = engine_digest()
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    for name, value in data.items():
        if name in ("oldest", "last_used") and isinstance(value, (int, float)):
            value = dt.datetime.fromtimestamp(value, dt.timezone.utc).isoformat(timespec="seconds")
        typer.echo(f"{name:<16} {value}")


@app.command(epilog="\b\nExamples:\n  modelshield store export results.jsonl\n  modelshield store export - | jq .sha256")
def export(output: Path = typer.Argument(..., metavar="FILE", help="JSON lines file ('-' for stdout)."),
           store: Optional[str] = typer.Option(None, "--store", help=STORE_HELP)) -> None:
    """Write every stored analysis as one JSON line (key, dates, analysis); never file contents."""
    from modelshield.scanner.errors import StoreError

    with _open(store) as db:
        try:
            if str(output) == "-":
                n = db.export(sys.stdout)
            else:
                with open(output, "w", encoding="utf-8", errors="surrogateescape") as out:
                    n = db.export(out)
        except (StoreError, OSError) as exc:
            fail(str(exc))
    typer.echo(f"modelshield: {n} entries exported", err=True)


@app.command(epilog="\b\nExamples:\n  modelshield store gc --older-than 90d\n  modelshield store gc --older-than 0d --other-engines")
def gc(older_than: str = typer.Option(..., "--older-than", metavar="AGE", help="e.g. 90d, 12h, 30m: entries not used for this long."),
       other_engines: bool = typer.Option(False, "--other-engines", help="Also delete entries made by other engine versions."),
       store: Optional[str] = typer.Option(None, "--store", help=STORE_HELP)) -> None:
    """Delete entries not used for AGE (and, with --other-engines, those no current scan can read)."""
    from modelshield.scanner.errors import StoreError
    from modelshield.scanner.store import engine_digest

    m = re.fullmatch(r"\s*(\d+)\s*([dhms])\s*", older_than)
    if not m:
        fail(f"--older-than {older_than!r}: give a number and a unit, e.g. 90d, 12h, 30m")
    seconds = int(m.group(1)) * {"d": 86400, "h": 3600, "m": 60, "s": 1}[m.group(2)]
    with _open(store) as db:
        try:
            n = db.gc(dt.timedelta(seconds=seconds), engine_digest() if other_engines else None)
        except StoreError as exc:
            fail(str(exc))
    typer.echo(f"{n} entries deleted")


def read_targets(path: Path) -> list[str]:
    """The targets listed in `path` (one a line; blank lines and '#' comments skipped; '-': stdin)."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"--from {path}: {getattr(exc, 'strerror', None) or exc}")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def store_summary(report: Report) -> None:
    """One line on stderr: how many files came from the store."""
    artefacts = report.artefacts
    hits = sum(1 for a in artefacts if a.from_store is not None)
    if hits:
        saved = sum(a.size for a in artefacts if a.from_store is not None)
        typer.echo(f"modelshield: result store: {hits} of {len(artefacts)} files from the store ({saved / 1e6:.1f} MB not analysed again)", err=True)
