"""The orchestrator: targets -> files -> one read per file (hash + identify + analyse) -> report."""
from __future__ import annotations

import collections
import contextlib
import datetime as _dt
import functools
import os
import stat
import sys
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from . import formats, repo_checks
from .blob import SPILL, Blob, FileBlob
from .budgets import BudgetExceeded, FormatError
from .context import ScanContext
from .filepass import INLINE_MAX, Digests, hash_inline, hash_while
from .findings import Artefact, Location, Report, Status, TargetResult
from .formats.interface import HEAD_SIZE
from .policy import Policy
from .rules import load_rules
from .sources import SourceOptions, resolve
from . import datafiles
from .worker import Job, WorkerPool


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
        ctx.add("MS-LIM-001", limit=f"{ctx.budgets.max_memory >> 20} MiB", during=f"in the {module.NAME} analysis")
    except Exception as exc:  # noqa: BLE001 - a parser bug must never pass a file as clean
        ctx.add("MS-GEN-006", format=module.NAME, error=f"internal error {type(exc).__name__}: {exc}")
    return module.NAME


def analyse_open_file(fd: int, relpath: str, policy: Policy) -> Artefact:
    """Identify and analyse the open regular file `fd` (no hashing): the job a worker runs."""
    artefact = Artefact(path=relpath)
    ctx = ScanContext(artefact=artefact, policy=policy, budgets=policy.budgets)
    name = os.path.basename(relpath)
    try:
        blob = FileBlob(relpath, name=name, fd=fd)
        artefact.size = blob.size
        found = analyse_blob(blob, ctx, name)
        if artefact.format == "unknown":  # a module may have named a flavour ("torch-zip")
            artefact.format = found
    except OSError as exc:
        ctx.add("MS-GEN-003", error=exc.strerror or str(exc))
    return artefact


LOOKAHEAD = 64  # small files queued ahead in the worker pool (no round trip per file)


@dataclass
class _Queued:
    """A small file whose analysis is queued in the pool and whose hashes are done."""

    relpath: str
    abspath: str
    fd: int
    size: int
    job: Job
    digests: Digests | None = None
    error: OSError | None = None


def scan_file(abspath: str, relpath: str, policy: Policy, progress: Progress | None = None,
              pool: WorkerPool | None = None) -> Artefact:
    """One file: one sequential read feeding the hashers while the analysis reads what it needs.

    With a `pool`, the analysis runs in a worker process under hard limits (scanner/worker);
    without, in this process.
    """
    return next(scan_files([(relpath, abspath, 0)], policy, progress, pool))


def scan_files(files: Iterable[tuple[str, str, int]], policy: Policy, progress: Progress | None = None,
               pool: WorkerPool | None = None) -> Iterator[Artefact]:
    """The artefacts of `files` ((relpath, abspath, size) as sources list them), in order.

    Files up to INLINE_MAX bytes are hashed here while LOOKAHEAD of them wait in the pool's
    queue, so that thousands of small files cost no process round trip each; larger files are
    hashed in two threads while their worker analyses them.
    """
    queued: collections.deque[_Queued] = collections.deque()
    try:
        for relpath, abspath, _size in files:
            try:
                fd = open_regular(abspath)
            except OSError as exc:
                artefact = Artefact(path=relpath, absolute_path=abspath, status=Status.SKIPPED,
                                    reason="unreadable")
                artefact.findings.append(load_rules().finding("MS-GEN-003", Location(path=relpath),
                                                              error=exc.strerror or str(exc)))
                yield from _drain(queued, policy, pool)
                yield artefact
                continue
            except NotRegular as exc:
                yield from _drain(queued, policy, pool)
                yield special_file(relpath, exc.what, abspath)
                continue
            on_bytes = (lambda n, rel=relpath: progress("advance", rel, n)) if progress else None
            size = os.fstat(fd).st_size
            if pool is not None and size <= INLINE_MAX:
                item = _Queued(relpath, abspath, fd, size, pool.submit(fd, relpath))
                queued.append(item)
                try:
                    item.digests = hash_inline(fd, on_bytes)
                except OSError as exc:
                    item.error = exc
                if len(queued) >= LOOKAHEAD:
                    yield _settle(queued.popleft(), policy, pool)
                continue
            yield from _drain(queued, policy, pool)
            try:
                yield _scan_open(fd, size, relpath, abspath, policy, on_bytes, pool)
            finally:
                os.close(fd)
    finally:
        for item in queued:
            os.close(item.fd)


def _drain(queued: "collections.deque[_Queued]", policy: Policy, pool: WorkerPool | None) -> Iterator[Artefact]:
    while queued:
        yield _settle(queued.popleft(), policy, pool)


def _settle(item: _Queued, policy: Policy, pool: WorkerPool | None) -> Artefact:
    """Wait for a queued file's analysis; close it; attach hashes."""
    assert pool is not None
    try:
        artefact = pool.wait(item.job).artefact
    finally:
        os.close(item.fd)
    return _finished(artefact, item.relpath, item.abspath, item.size, item.digests, item.error, policy)


def _scan_open(fd: int, size: int, relpath: str, abspath: str, policy: Policy,
               on_bytes: Callable[[int], None] | None, pool: WorkerPool | None) -> Artefact:
    """A file analysed while this process hashes it (threads for large files)."""
    digests: Digests | None = None
    error: OSError | None = None
    job = pool.submit(fd, relpath) if pool is not None else None
    try:
        if size <= INLINE_MAX:
            digests = hash_inline(fd, on_bytes)
            artefact = _analysed(fd, relpath, policy, pool, job)
        else:
            with hash_while(fd, on_bytes) as digests:
                artefact = _analysed(fd, relpath, policy, pool, job)
    except OSError as exc:
        artefact = pool.wait(job).artefact if job is not None and pool is not None else Artefact(path=relpath)
        digests, error = None, exc
    return _finished(artefact, relpath, abspath, size, digests, error, policy)


def _finished(artefact: Artefact, relpath: str, abspath: str, size: int, digests: Digests | None,
              error: OSError | None, policy: Policy) -> Artefact:
    artefact.absolute_path = abspath
    artefact.size = size
    if error is not None or digests is None:
        artefact.findings.append(load_rules().finding("MS-GEN-003", Location(path=relpath),
                                                      error=(error.strerror or str(error)) if error else "not read"))
    else:
        artefact.sha256, artefact.sha512 = digests.sha256, digests.sha512
    policy.apply_suppressions(artefact.findings, relpath)
    return artefact


def _analysed(fd: int, relpath: str, policy: Policy, pool: WorkerPool | None, job: Job | None) -> Artefact:
    if pool is not None and job is not None:
        return pool.wait(job).artefact
    return analyse_open_file(fd, relpath, policy)


class NotRegular(Exception):
    """The path is a FIFO, socket or device: never opened for reading (it could block or never end)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def open_regular(path: str) -> int:
    """Open a regular file for reading without blocking on FIFOs; NotRegular for anything else."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0))
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegular(special_kind(mode))
    return fd


def special_kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "a special file"


def special_file(relpath: str, what: str, abspath: str | None = None) -> Artefact:
    """A skipped non-regular file: inconclusive when a loader would open it by its name (MS-LIM-004)."""
    artefact = Artefact(path=relpath, absolute_path=abspath, status=Status.SKIPPED, reason="special file",
                        format="-")
    hint = loader_hint(os.path.basename(relpath))
    loc = Location(path=relpath)
    if hint:
        artefact.findings.append(load_rules().finding("MS-LIM-004", loc, name=os.path.basename(relpath),
                                                      what=what, hint=hint))
    else:
        artefact.findings.append(load_rules().finding("MS-GEN-008", loc, what=what))
    return artefact


def scan_target(target: str, policy: Policy, progress: Progress | None = None,
                options: SourceOptions | None = None, pool: WorkerPool | None = None) -> TargetResult:
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
    for artefact in scan_files(files, policy, progress, pool):
        result.artefacts.append(artefact)
    if resolved.finish:
        resolved.finish(result)
    repo_checks.check_target(result, load_rules())
    for artefact in result.artefacts:
        policy.apply_suppressions(artefact.findings, artefact.path)
    policy.apply_suppressions(result.findings, ".")
    if progress:
        progress("done", target, total)
    return result


def scan(targets: Iterable[str] | str, policy: Policy | None = None,
         progress: Progress | None = None, options: SourceOptions | None = None,
         isolate: bool = True) -> Report:
    """Scan one or more targets and return the report (the public entry point's engine).

    `isolate`: analyse each file in a worker process under hard memory and time limits
    (scanner/worker); False analyses in this process, bounded only by the in-code budgets.
    """
    from . import __version__
    from . import worker

    if isinstance(targets, (str, os.PathLike)):
        targets = [os.fspath(targets)]
    policy = policy or Policy.default()
    report = Report(tool_version=__version__, started=_now(), fail_on=policy.fail_on,
                    policy=policy.describe())
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(WorkerPool(policy)) if isolate and worker.available() else None
        if pool is not None:
            pool.start()
        else:
            SPILL.reset(policy.budgets.max_spill)
        for target in targets:
            report.targets.append(scan_target(os.fspath(target), policy, progress, options, pool))
    report.finished = _now()
    return report


def _now() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = _dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc) if epoch and epoch.isdigit() \
        else _dt.datetime.now(_dt.timezone.utc)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")
