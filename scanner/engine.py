"""The orchestrator: targets -> files -> one read per file (hash + identify + analyse) -> report."""
from __future__ import annotations

import datetime as _dt
import functools
import os
import sys
from typing import Callable, Iterable

from . import formats, repo_checks
from .blob import Blob, FileBlob
from .budgets import BudgetExceeded, FormatError
from .context import ScanContext
from .filepass import hash_while
from .findings import Artefact, Report, Status, TargetResult
from .formats.interface import HEAD_SIZE
from .policy import Policy
from .rules import load_rules
from .sources import SourceOptions, resolve
from . import datafiles


Progress = Callable[[str, int, int], None]  # (event "start"/"advance"/"done", path or "", bytes)


@functools.lru_cache(maxsize=1)
def loader_suffixes() -> dict[str, str]:
    """Suffix -> loader that opens such files (data/loader_extensions.toml)."""
    return datafiles.load("loader_extensions.toml")["suffix"]


def loader_hint(name: str) -> str | None:
    """Which loader would open a file of this name, if any."""
    lower = name.lower()
    for suffix, loader in loader_suffixes().items():
        if lower.endswith(suffix):
            return loader
    return None


def identify(blob: Blob, name: str):
    """The first format module that recognises the content, or None."""
    head = blob.head(HEAD_SIZE)
    for module in formats.modules():
        if module.sniff(head, blob, name):
            return module
    return None


def analyse_blob(blob: Blob, ctx: ScanContext, name: str) -> str:
    """Identify `blob` and run its format module, turning errors into inconclusive findings.

    Returns the format name ("unknown" if nothing recognised it).
    """
    ctx.check_time()
    module = identify(blob, name)
    if module is None:
        hint = loader_hint(name)
        if blob.size == 0:
            if hint:
                ctx.add("MS-GEN-006", format="empty file", error=f"0 bytes, but {hint} would open it")
            return "empty"
        if hint:
            ctx.add("MS-GEN-002", hint=hint)
        elif ctx.member is None:
            ctx.add("MS-GEN-001")
            ctx.artefact.status = Status.INVENTORIED
        return "unknown"
    try:
        module.analyse(blob, ctx)
    except BudgetExceeded as exc:
        ctx.add("MS-GEN-005", budget=exc.budget, limit=exc.limit)
    except FormatError as exc:
        ctx.add(exc.rule_id, offset=exc.offset, format=module.NAME, error=exc.reason)
    except NotImplementedError:
        ctx.add("MS-GEN-006", format=module.NAME, error="this format is not analysed yet")
    except RecursionError:
        ctx.add("MS-GEN-005", budget="recursion", limit=sys.getrecursionlimit())
    except MemoryError:
        ctx.add("MS-GEN-005", budget="memory", limit="available memory")
    except Exception as exc:  # noqa: BLE001 - a parser bug must never pass a file as clean
        ctx.add("MS-GEN-006", format=module.NAME, error=f"internal error {type(exc).__name__}: {exc}")
    return module.NAME


def scan_file(abspath: str, relpath: str, policy: Policy, progress: Progress | None = None) -> Artefact:
    """One file: one sequential read feeding the hashers while the format module analyses it."""
    artefact = Artefact(path=relpath, absolute_path=abspath)
    try:
        blob = FileBlob(abspath, name=os.path.basename(relpath))
    except OSError as exc:
        artefact.status = Status.SKIPPED
        artefact.reason = "unreadable"
        ctx = ScanContext(artefact=artefact, policy=policy, budgets=policy.budgets)
        ctx.add("MS-GEN-003", error=exc.strerror or str(exc))
        return artefact
    with blob:
        artefact.size = blob.size
        ctx = ScanContext(artefact=artefact, policy=policy, budgets=policy.budgets)
        on_bytes = (lambda n: progress("advance", relpath, n)) if progress else None
        try:
            with hash_while(blob.fd, on_bytes) as digests:
                name = analyse_blob(blob, ctx, os.path.basename(relpath))
                if artefact.format == "unknown":  # a module may have named a flavour ("torch-zip")
                    artefact.format = name
        except OSError as exc:
            ctx.add("MS-GEN-003", error=exc.strerror or str(exc))
        else:
            artefact.sha256, artefact.sha512 = digests.sha256, digests.sha512
    policy.apply_suppressions(artefact.findings, relpath)
    return artefact


def scan_target(target: str, policy: Policy, progress: Progress | None = None,
                options: SourceOptions | None = None) -> TargetResult:
    """Resolve a target (path, hf://, URL) to files, scan each, then run repo-level checks."""
    resolved = resolve(target, options)
    result = resolved.result
    if result.error:
        return result
    files = resolved.files
    if isinstance(files, list):
        total = sum(size for _, _, size in files)
    else:
        total = resolved.total_bytes or 0
    if progress:
        progress("start", target, total)
    for relpath, abspath, _size in files:
        result.artefacts.append(scan_file(abspath, relpath, policy, progress))
    if resolved.finish:
        resolved.finish(result)
    repo_checks.check_target(result, load_rules())
    for artefact in result.artefacts:
        policy.apply_suppressions(artefact.findings, artefact.path)
    policy.apply_suppressions(result.findings, ".")
    if progress:
        progress("done", target, total)
    if not result.error and not any(a.status is not Status.SKIPPED for a in result.artefacts):
        result.error = nothing_scanned(result)
    return result


def nothing_scanned(result: TargetResult) -> str:
    """The one-line error for a target that yielded no file to analyse: an empty gate never passes."""
    skipped: dict[str, int] = {}
    for a in result.artefacts:
        skipped[a.reason or "skipped"] = skipped.get(a.reason or "skipped", 0) + 1
    detail = "; ".join(f"{reason}: {n}" for reason, n in skipped.items())
    return f"{result.target}: nothing scanned (no file to analyse" + (f"; skipped {detail}" if detail else "") + ")"


def unique_targets(targets: Iterable[str]) -> list[str]:
    """The targets in order, each once (local paths compared by their real path)."""
    seen: set[str] = set()
    out = []
    for target in targets:
        key = target if "://" in target else os.path.realpath(os.path.expanduser(target))
        if key not in seen:
            seen.add(key)
            out.append(target)
    return out


def scan(targets: Iterable[str] | str, policy: Policy | None = None,
         progress: Progress | None = None, options: SourceOptions | None = None) -> Report:
    """Scan one or more targets and return the report (the public entry point's engine)."""
    from . import __version__

    if isinstance(targets, (str, os.PathLike)):
        targets = [os.fspath(targets)]
    policy = policy or Policy.default()
    report = Report(tool_version=__version__, started=_now(), fail_on=policy.fail_on,
                    policy=policy.describe())
    for target in unique_targets(os.fspath(t) for t in targets):
        report.targets.append(scan_target(target, policy, progress, options))
    report.finished = _now()
    report.policy = policy.describe([f for _, _, f in report.all_findings()])
    return report


def _now() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = _dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc) if epoch and epoch.isdigit() \
        else _dt.datetime.now(_dt.timezone.utc)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")
