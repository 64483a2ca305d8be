"""What every command shares: one-line errors, policy loading, source options, output writing,
and the conventions every command follows (`-h`, `--version`, plain help with choices shown)."""
from __future__ import annotations

import enum
import json
import os
import sys
from pathlib import Path
from typing import Iterable, Any, NoReturn, Optional

import typer
from typer.core import TyperGroup

from modelshield import Policy, PolicyError, SourceOptions, __version__
from modelshield.scanner.output import escape
from modelshield.scanner.policy import parse_fail_on

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class FailOn(str, enum.Enum):
    """The same set as the policy's `fail_on` (scanner.policy.FAIL_ON); case-insensitive."""

    critical = "critical"
    high = "high"
    medium = "medium"
    low = "low"


class Phase(str, enum.Enum):
    """ETSI EN 304 223 phase a BOM describes (the same choices for `scan --sbom` and `sbom`)."""

    development = "development"
    deployment = "deployment"


class SpecVersion(str, enum.Enum):
    v1_6 = "1.6"
    v1_7 = "1.7"


def print_version(value: bool) -> None:
    """`--version` callback: print the version and exit 0."""
    if value:
        typer.echo(f"modelshield {__version__}")
        raise typer.Exit(0)


def _plain_help(command: Any) -> None:
    """Plain help for the whole command tree: choices shown as choices, never `<bool>`/`<str>`,
    and no rich markup eating `[brackets]` in help texts."""
    if hasattr(command, "rich_markup_mode"):
        command.rich_markup_mode = None
    for param in command.params:
        if hasattr(param, "display_type_rich") and not getattr(param, "_plain", False):
            param.display_type_rich = _plain_label(param, param.display_type_rich)
            param._plain = True
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub)


_LABELS = {"<str>": "TEXT", "<list[str]>": "TEXT", "<path>": "PATH", "<list[path]>": "PATH", "<int>": "INTEGER",
           "<float>": "NUMBER"}


def _plain_label(param: Any, label: Any) -> Any:
    """The value label in help: the metavar when given, else TEXT/PATH/INTEGER, choices as `<a|b>`."""
    def plain(ctx: Any) -> Any:
        if getattr(param, "metavar", None):
            return None
        text = label(ctx)
        if isinstance(text, str) and text.startswith("<list[") and text.endswith("]>"):
            text = f"<{text[6:-2]}>"  # a repeatable option: the help text says it repeats
        return _LABELS.get(text, text)

    return plain


class ConventionGroup(TyperGroup):
    """The root command group: plain help everywhere (`-h` comes from the context settings,
    inherited by every sub-command), and `--version` accepted by every command."""

    def main(self, args: Any = None, *rest: Any, **kwargs: Any) -> Any:
        _plain_help(self)
        argv = list(sys.argv[1:] if args is None else args)
        head = argv[: argv.index("--")] if "--" in argv else argv
        if "--version" in head:
            typer.echo(f"modelshield {__version__}")
            sys.exit(0)
        return super().main(argv, *rest, **kwargs)


def make_app(**kwargs: Any) -> typer.Typer:
    """A typer app with the project's conventions (sub-command groups too)."""
    options: dict[str, Any] = dict(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                                   rich_markup_mode=None, context_settings=CONTEXT)
    options.update(kwargs)
    return typer.Typer(**options)


def error(message: str) -> None:
    """One line on stderr (escaped: messages often carry artefact or path strings)."""
    typer.echo(f"modelshield: error: {escape.text(message)}", err=True)


def read_bom_json(path: Path) -> dict[str, Any]:
    """A BOM file as a dict; typer.Exit(2) with one line when unreadable or not a JSON object."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        error(f"cannot read {path}: {exc.strerror or exc}")
        raise typer.Exit(2) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        error(f"{path} is not JSON: {exc}")
        raise typer.Exit(2) from None
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        error(f"{path} is not a CycloneDX JSON BOM")
        raise typer.Exit(2)
    return doc


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr, then exit (2: incomplete, bad input or usage)."""
    error(message)
    raise typer.Exit(code)


def load_policy(path: Optional[Path], fail_on: Optional[FailOn], no_policy: bool = False) -> Policy:
    """The policy file (given, or discovered; none with `no_policy`), with --fail-on over it."""
    if no_policy and path is not None:
        fail("--policy and --no-policy exclude each other")
    try:
        policy = Policy.default() if no_policy else Policy.load(path)
        if fail_on is not None:
            policy.fail_on = parse_fail_on(fail_on.value)
    except PolicyError as exc:
        fail(str(exc))
    if no_policy:
        policy.source = "none (--no-policy)"
    return policy


def check_output_path(path: Optional[Path], what: str = "-o") -> None:
    """Fail before any work when `path` cannot be written (missing folder, a folder, read-only)."""
    if path is None or str(path) == "-":
        return
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        fail(f"cannot write {what} {path}: it is a folder")
    if not parent.is_dir():
        fail(f"cannot write {what} {path}: folder {parent} does not exist")
    if path.exists() and not os.access(path, os.W_OK) or not path.exists() and not os.access(parent, os.W_OK):
        fail(f"cannot write {what} {path}: permission denied")


def source_options(include: list[str], exclude: list[str], max_download: Optional[str], offline: bool,
                   cache_dir: Optional[Path], include_vcs: bool = False) -> SourceOptions:
    """SourceOptions from the shared source flags."""
    try:
        size = parse_size(max_download)
    except ValueError as exc:
        fail(str(exc))
    return SourceOptions(include=include, exclude=exclude, max_download=size, offline=True if offline else None,
                         cache_dir=str(cache_dir) if cache_dir else None, include_vcs=include_vcs)


def write_output(text: str | Iterable[str], output: Optional[Path]) -> None:
    """Write to `output`, or stdout for None or "-" (always ending with a newline); `text` may come
    in pieces (the JSON report of a large scan is streamed)."""
    chunks = iter([text] if isinstance(text, str) else text)
    try:
        fh = sys.stdout if output is None or str(output) == "-" else open(output, "w", encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    try:
        last = ""
        for chunk in chunks:
            if chunk:
                fh.write(chunk)
                last = chunk
        if last and not last.endswith("\n"):
            fh.write("\n")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    finally:
        if fh is not sys.stdout:
            fh.close()


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
