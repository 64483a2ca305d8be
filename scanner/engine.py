"""The orchestrator: targets -> files -> one read per file (hash + identify + analyse) -> report."""
from __future__ import annotations

import datetime as _dt
import os
from typing import Callable, Iterable

from . import env, repo_checks
from .blob import FileBlob
from .context import ScanContext
from .dispatch import analyse_blob
from .filepass import hash_while
from .findings import Artefact, Report, Status, TargetResult
from .policy import Policy
from .rules import load_rules
from .sources import SourceOptions, resolve


Progress = Callable[[str, str, int], None]  # (event "start"/"advance"/"done", path or "", bytes)


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
        ctx = ScanContext(artefact=artefact, policy=policy, budgets=policy.budgets, dispatcher=analyse_blob)
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
    from .signatures.scan import check_target as check_signature

    check_signature(result, policy.trust, policy.require_signature)
    repo_checks.check_target(result, load_rules(), policy)
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
    moment = env.source_date_epoch() or _dt.datetime.now(_dt.timezone.utc)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")
