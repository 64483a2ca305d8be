"""The orchestrator: targets -> files -> one read per file (hash + identify + analyse) -> report."""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as _dt
import os
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from . import env, repo_checks
from .blob import SPILL, Blob, BytesBlob, FileBlob
from .context import ScanContext
from .filepass import INLINE_MAX, Digests, hash_inline, hash_while, read_inline
from .findings import Artefact, Location, Report, Status, TargetResult
from .policy import Policy
from .rules import load_rules
from .sources import SourceOptions, resolve
from .sources.interface import Resolved
from .errors import NotRegular
from .special import open_regular, special_file
from .worker import Job, WorkerPool
from .reuse import Reuse
from .store import ResultStore


Progress = Callable[[str, str, int], None]  # (event "start"/"advance"/"done", path or "", bytes)
# Where the files of a target are analysed instead of this process's worker pool (ray_executor.py):
# (entries as scan_files takes them, policy, progress) -> their artefacts, in order
Executor = Callable[[Iterable["tuple[str, str, int] | Artefact"], Policy, "Progress | None"], Iterator[Artefact]]


def analyse_open_file(source: int | bytes | memoryview, relpath: str, policy: Policy,
                      abspath: str | None = None) -> Artefact:
    """Identify and analyse the open regular file `source` (a descriptor), or a small file's
    content already read (bytes), without hashing: the job a worker runs.

    `abspath`: where the file is on disk, for formats that resolve references next to it (ONNX
    external data); the content is read from `source` only.
    """
    from .dispatch import analyse_blob  # the formats: imported where analysis runs (workers), not to list files

    artefact = Artefact(path=relpath, absolute_path=abspath)
    ctx = ScanContext(artefact=artefact, policy=policy, budgets=policy.budgets, dispatcher=analyse_blob)
    name = os.path.basename(relpath)
    try:
        blob: Blob = (FileBlob(relpath, name=name, fd=source) if isinstance(source, int)
                      else BytesBlob(source, name=name))
        artefact.size = blob.size
        found = analyse_blob(blob, ctx, name)
        if artefact.format == "unknown":  # a module may have named a flavour ("torch-zip")
            artefact.format = found
    except OSError as exc:
        ctx.add("MS-GEN-003", error=exc.strerror or str(exc))
    return artefact


def analyse_file(path: str, relpath: str, policy: Policy) -> Artefact:
    """Analyse one file (no hashes) in a worker process under the policy's hard limits."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        with WorkerPool(policy, analyse_open_file) as pool:
            outcome = pool.wait(pool.submit(fd, relpath, os.path.abspath(path)))
    finally:
        os.close(fd)
    outcome.artefact.absolute_path = path
    return outcome.artefact


BATCH = 16  # small files sent to a worker as one job
IN_FLIGHT = 4  # jobs submitted ahead per worker (the pool hands them out as workers have room)
CONTENT_MAX = 64 << 10  # files up to this size travel to the worker as content, not as a descriptor


@dataclass
class _File:
    """A file hashed here, whose analysis is a worker's job (alone, or with other small files)."""

    relpath: str
    abspath: str
    size: int
    source: int | bytes  # the open file, or its whole content (up to CONTENT_MAX) read once here
    digests: Digests | None = None
    error: OSError | None = None


@dataclass
class _Sent:
    """One place in the output order: a job's files, or an artefact already made here."""

    job: Job | None
    files: list[_File]
    ready: Artefact | None = None


def scan_file(abspath: str, relpath: str, policy: Policy, progress: Progress | None = None,
              pool: WorkerPool | None = None) -> Artefact:
    """One file: one sequential read feeding the hashers while the analysis reads what it needs.

    With a `pool`, the analysis runs in a worker process under hard limits (scanner/worker);
    without, in this process.
    """
    return next(scan_files([(relpath, abspath, 0)], policy, progress, pool))


def scan_files(files: Iterable[tuple[str, str, int] | Artefact], policy: Policy, progress: Progress | None = None,
               pool: WorkerPool | None = None) -> Iterator[Artefact]:
    """The artefacts of `files` ((relpath, abspath, size) as sources list them), in order; an
    `Artefact` among them is passed through at its place.

    With a pool, every file is a job submitted ahead while this process hashes the next ones:
    files up to INLINE_MAX bytes BATCH at a time (thousands of small files cost no process round
    trip each), larger ones alone, hashed in two threads while a worker analyses them. Results
    come back in order; at most IN_FLIGHT jobs per worker are outstanding.
    """
    if pool is None:
        yield from _scan_here(files, policy, progress)
        return
    batch: list[_File] = []
    sent: collections.deque[_Sent] = collections.deque()
    limit = IN_FLIGHT * pool.size

    def flush() -> None:
        if batch:
            sent.append(_Sent(pool.submit_many([(f.source, f.relpath, f.abspath) for f in batch]), list(batch)))
            batch.clear()

    def settled(wait: bool) -> Iterator[Artefact]:
        """The artefacts at the head of the order that are done (all that are over the limit, or
        all of them, when `wait`)."""
        while sent and (wait or len(sent) > limit or sent[0].job is None or pool.ready(sent[0].job)):
            head = sent.popleft()
            if head.job is None:
                assert head.ready is not None
                yield head.ready
                continue
            try:
                outcomes = pool.wait_many(head.job)
            finally:
                _close(head.files)
            for item, outcome in zip(head.files, outcomes):
                yield _finished(outcome.artefact, item.relpath, item.abspath, item.size, item.digests, item.error,
                                policy)

    started = False
    try:
        for entry in files:
            if not started and not isinstance(entry, Artefact):
                pool.start()  # the workers' imports overlap with hashing the first files; not at all when
                started = True  # every file came from the result store
            opened = _open(entry)
            if isinstance(opened, Artefact):  # recorded by the source itself (refused, skipped), or unopenable
                flush()
                sent.append(_Sent(None, [], opened))
                yield from settled(False)
                continue
            fd, size = opened
            assert not isinstance(entry, Artefact)  # (_open passes those through)
            relpath, abspath, _ = entry
            on_bytes = (lambda n, rel=relpath: progress("advance", rel, n)) if progress else None
            item = _File(relpath, abspath, size, fd)
            if size <= INLINE_MAX:
                batch.append(item)
                try:
                    if size <= CONTENT_MAX:
                        item.source, item.digests = read_inline(fd, on_bytes)
                        os.close(fd)
                    else:
                        item.digests = hash_inline(fd, on_bytes)
                except OSError as exc:
                    item.error = exc
                if len(batch) >= BATCH:
                    flush()
            else:
                flush()
                job = pool.submit(fd, relpath, abspath)
                sent.append(_Sent(job, [item]))
                try:
                    with hash_while(fd, on_bytes) as item.digests:
                        while not item.digests.hashed.is_set():  # keep the workers fed meanwhile
                            if pool.busy:
                                pool.pump(0.05)
                            else:  # nothing can arrive: do not spin against the hashing threads
                                item.digests.hashed.wait(0.05)
                except OSError as exc:
                    item.digests, item.error = None, exc
            yield from settled(False)
        flush()
        yield from settled(True)
    finally:
        for rest in sent:
            _close(rest.files)
        _close(batch)


def _open(entry: tuple[str, str, int] | Artefact) -> tuple[int, int] | Artefact:
    """(descriptor, size) of a regular file, or the artefact saying why it is not read (an
    artefact the source recorded itself passes through)."""
    if isinstance(entry, Artefact):
        return entry
    relpath, abspath, _size = entry
    try:
        fd = open_regular(abspath)
    except OSError as exc:
        artefact = Artefact(path=relpath, absolute_path=abspath, status=Status.SKIPPED, reason="unreadable")
        artefact.findings.append(load_rules().finding("MS-GEN-003", Location(path=relpath),
                                                      error=exc.strerror or str(exc)))
        return artefact
    except NotRegular as exc:
        return special_file(relpath, exc.what, abspath)
    return fd, os.fstat(fd).st_size


def _scan_here(files: Iterable[tuple[str, str, int] | Artefact], policy: Policy,
               progress: Progress | None) -> Iterator[Artefact]:
    """scan_files without workers: each file analysed in this process while it is hashed."""
    for entry in files:
        opened = _open(entry)
        if isinstance(opened, Artefact):
            yield opened
            continue
        fd, size = opened
        assert not isinstance(entry, Artefact)  # (_open passes those through)
        relpath, abspath, _ = entry
        on_bytes = (lambda n, rel=relpath: progress("advance", rel, n)) if progress else None
        try:
            yield _scan_open(fd, size, relpath, abspath, policy, on_bytes)
        finally:
            os.close(fd)


def _close(items: list[_File]) -> None:
    for item in items:
        if isinstance(item.source, int):
            os.close(item.source)
            item.source = b""


def _scan_open(fd: int, size: int, relpath: str, abspath: str, policy: Policy,
               on_bytes: Callable[[int], None] | None) -> Artefact:
    """A file analysed in this process while it is hashed (in threads for large files)."""
    digests: Digests | None = None
    error: OSError | None = None
    artefact = None
    try:
        if size <= INLINE_MAX:
            digests = hash_inline(fd, on_bytes)
            artefact = analyse_open_file(fd, relpath, policy, abspath)
        else:
            with hash_while(fd, on_bytes) as digests:
                artefact = analyse_open_file(fd, relpath, policy, abspath)
    except OSError as exc:
        digests, error = None, exc
    return _finished(artefact or Artefact(path=relpath), relpath, abspath, size, digests, error, policy)


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


def _in_order(files: Iterable[tuple[str, str, int]], result: TargetResult) -> Iterator[tuple[str, str, int] | Artefact]:
    """The source's files, with the artefacts it records while listing them (a refused download)
    moved into the stream at the point they were recorded: scanning in batches must not reorder."""
    for entry in files:
        recorded = list(result.artefacts)
        result.artefacts.clear()
        yield from recorded
        yield entry
    recorded = list(result.artefacts)
    result.artefacts.clear()
    yield from recorded


def scan_target(target: str, policy: Policy, progress: Progress | None = None,
                options: SourceOptions | None = None, pool: WorkerPool | None = None,
                reuse: Reuse | None = None, executor: Executor | None = None) -> TargetResult:
    """Resolve a target (path, hf://, URL) to files, scan each, then run repo-level checks.

    With `reuse` (a result store), files whose analysis is stored are not analysed again and
    the analyses made here are stored."""
    return next(scan_targets([target], policy, progress, options, pool, reuse, executor))


@dataclass
class _Opened:
    """A target resolved and being scanned (between `_open_target` and `_finish_target`)."""

    target: str
    result: TargetResult
    resolved: Resolved | None = None  # None: resolving failed (result.error says why)
    before: list[Artefact] = dataclasses.field(default_factory=list)
    total: int = 0


def _open_target(target: str, progress: Progress | None, options: SourceOptions | None,
          reuse: Reuse | None) -> tuple[_Opened, Iterator[tuple[str, str, int] | Artefact]]:
    if reuse is not None:
        options = dataclasses.replace(options or SourceOptions(), reuse=reuse.published)
    resolved = resolve(target, options)
    result = resolved.result
    if result.error:
        return _Opened(target, result), iter(())
    files = resolved.files
    total = sum(size for _, _, size in files) if isinstance(files, list) else resolved.total_bytes or 0
    if progress:
        progress("start", target, total)
    opened = _Opened(target, result, resolved, result.artefacts, total)
    result.artefacts = []
    entries: Iterator[tuple[str, str, int] | Artefact] = _in_order(files, result)
    if reuse:
        entries = reuse.lookups(entries, progress)
    return opened, entries


def _finish_target(opened: _Opened, scanned: list[Artefact], policy: Policy, progress: Progress | None,
           reuse: Reuse | None) -> TargetResult:
    result, resolved = opened.result, opened.resolved
    if resolved is None:
        return result
    if reuse:
        reuse.record(scanned)
    result.artefacts = opened.before + scanned + result.artefacts
    if resolved.finish:
        resolved.finish(result)
    from .signatures.scan import check_target as check_signature

    check_signature(result, policy.trust, policy.require_signature)
    repo_checks.check_target(result, load_rules(), policy)
    for artefact in result.artefacts:
        policy.apply_suppressions(artefact.findings, artefact.path)
    policy.apply_suppressions(result.findings, ".")
    if progress:
        progress("done", opened.target, opened.total)
    if not result.error and not any(a.status is not Status.SKIPPED for a in result.artefacts):
        result.error = nothing_scanned(result)
    return result


def scan_targets(targets: Iterable[str], policy: Policy, progress: Progress | None = None,
                 options: SourceOptions | None = None, pool: WorkerPool | None = None,
                 reuse: Reuse | None = None, executor: Executor | None = None) -> Iterator[TargetResult]:
    """The results of `targets`, in order. The files of all targets go through one stream to the
    workers (or the executor), so that many small targets keep every worker busy; a target is
    finished (repo checks, signatures) as soon as the last of its files is back."""
    opened: list[_Opened] = []
    owners: collections.deque[int] = collections.deque()  # target index of each entry sent, in order

    def stream() -> Iterator[tuple[str, str, int] | Artefact]:
        for index, target in enumerate(targets):
            one, entries = _open_target(target, progress, options, reuse)
            opened.append(one)
            for entry in entries:
                owners.append(index)
                yield entry

    scanned: dict[int, list[Artefact]] = collections.defaultdict(list)
    closed = 0
    results = executor(stream(), policy, progress) if executor is not None else \
        scan_files(stream(), policy, progress, pool)
    for artefact in results:
        index = owners.popleft()
        scanned[index].append(artefact)
        while closed < index:  # every file of the targets before this one is back
            yield _finish_target(opened[closed], scanned.pop(closed, []), policy, progress, reuse)
            closed += 1
    while closed < len(opened):
        yield _finish_target(opened[closed], scanned.pop(closed, []), policy, progress, reuse)
        closed += 1


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
         progress: Progress | None = None, options: SourceOptions | None = None,
         workers: int | None = None, store: ResultStore | None = None,
         warn: Callable[[str], None] | None = None, executor: Executor | None = None) -> Report:
    """Scan one or more targets and return the report (the public entry point's engine).

    `workers`: analysis processes under hard memory and time limits (scanner/worker); None for
    the default (two, or one on a single core), 0 to analyse in this process, bounded only by the
    in-code budgets (debugging; the reference of bench/bench_small_files.py).
    `store`: a result store (scanner/store) to read analyses from and write them to; `warn` is
    told once if it fails during the scan (the scan then goes on without it). `executor`: where the
    files are analysed instead of the local worker pool (`ray_executor.RayExecutor`).
    """
    from . import __version__
    from . import worker

    if isinstance(targets, (str, os.PathLike)):
        targets = [os.fspath(targets)]
    policy = policy or Policy.default()
    report = Report(tool_version=__version__, started=_now(), fail_on=policy.fail_on,
                    policy=policy.describe())
    size = default_workers() if workers is None else workers
    with contextlib.ExitStack() as stack:
        pool = None
        if executor is None and size > 0 and worker.available():
            pool = stack.enter_context(WorkerPool(policy, analyse_open_file, size))
        else:
            SPILL.reset(policy.budgets.max_spill)
        reuse = Reuse(store, policy, warn or (lambda message: None)) if store is not None else None
        report.targets.extend(scan_targets(unique_targets(os.fspath(t) for t in targets), policy, progress, options,
                                           pool, reuse, executor))
    report.finished = _now()
    report.policy = policy.describe([f for _, _, f in report.all_findings()])
    return report


def default_workers() -> int:
    """Two analysis workers (the scanning process hashes while they analyse), one on one core."""
    return max(1, min(2, os.cpu_count() or 1))


def _now() -> str:
    moment = env.source_date_epoch() or _dt.datetime.now(_dt.timezone.utc)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")
