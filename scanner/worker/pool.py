"""The parent's side of the worker processes: queue jobs, enforce the wall clock, read results.

`submit(fd, path)` passes an open file to a worker; `submit_many([(fd, path), ...])` passes
several small files as one job (one message each way for all of them: thousands of small files
then cost no process round trip each). Submitted jobs wait in the pool and go to the first worker
with room (DEPTH each, sent without ever blocking on a busy worker's socket); `pump` moves them
along while the caller does other work, `ready(job)` asks without waiting. `wait(job)` returns
the `Outcome`s, killing the worker when the job's time runs out (`max_seconds`, or
`max_native_seconds` while a native parser call runs). A worker that dies or is killed while on a
one-file job yields an artefact with one inconclusive finding naming the limit that was hit; a
job of several files is run again one file per job, so the limit is pinned on the file that hit
it and the others are analysed normally. Jobs queued behind a lost worker go to a fresh one.
The caller keeps each job's file descriptors open until its `wait` returned.
"""
from __future__ import annotations

import atexit
import collections
import hashlib
import json
import os
import select
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ..findings import Artefact, FormatName, Location
from ..rules import load_rules
from ..errors import ChannelClosed, MessageTooLarge
from .channel import Channel
from .codec import decode_artefact, encode_policy

if TYPE_CHECKING:
    from ..policy import Policy

GRACE = 2.0  # seconds past the artefact's own max_seconds check before the parent kills
MAX_RESULT = 256 << 20  # bytes of one encoded result (aggregated findings stay far below)
DEPTH = 2  # jobs sent to one worker at a time: the one it runs and the next, so it never waits on us
NEAR_CAP = 0.75  # a worker killed by a signal past this share of max_memory ran out of memory
_EXIT_MEMORY = 86  # child.EXIT_MEMORY (not imported: the parent never needs the child module)

Analyse = Callable[[Any, str, "Policy", "str | None"], Artefact]
"""The job a worker runs: (source, reported path, policy, path on disk) -> Artefact, where the
source is an open regular file (int) or a small file's content (bytes)."""


def job_name(analyse: Analyse) -> str:
    """`module:function` of a module-level job function: what a worker imports and calls (the
    workers are shared by every pool, so the function travels by name, like the policy by value)."""
    name = f"{analyse.__module__}:{analyse.__qualname__}"
    if "<" in name or "." in analyse.__qualname__:
        raise ValueError(f"a worker job must be a module-level function, not {name}")
    return name


@dataclass
class Outcome:
    """What one job produced: the artefact and the resources its analysis used."""

    artefact: Artefact
    peak_rss: int = 0  # bytes: the worker's peak resident size during this job (its whole life on non-Linux)
    baseline_rss: int = 0  # bytes: its resident size when it started (shared with the scanning process)
    seconds: float = 0.0
    spill: int = 0  # bytes written to temporary files
    limit: str | None = None  # the hard limit that ended the worker: memory, time, native-time, crash


@dataclass
class Job:
    """A submitted job (one or more files); pass it to `WorkerPool.wait`."""

    files: list[tuple[int | bytes, str, str | None]]  # (open descriptor or content, reported path, path on disk)
    worker: "_Worker | None" = None
    sent: float = 0.0
    started: float | None = None  # when the worker began it: sent to an idle worker, or its predecessor answered
    native: tuple[str, float] | None = None  # (parser, deadline) while a native call runs
    parser: str | None = None  # the last native parser entered
    outcomes: list[Outcome] | None = None
    singles: list["Job"] | None = None  # the files run again one per job after this job was lost


@dataclass
class _Worker:
    pid: int
    chan: Channel
    baseline: int = 0  # resident size at its start
    policies: set[str] = field(default_factory=set)  # policy ids it was sent
    queue: collections.deque = field(default_factory=collections.deque)  # jobs sent, not answered


class WorkerPool:
    """Up to `size` analysis workers for one policy.

    The workers are long-lived and shared through the process: forked once from one zygote (itself
    forked once from this process), they go back to an idle set when a pool closes and serve the
    next pool, whatever its policy (sent to them as JSON). Use as a context manager (or call
    `close`). A pool is not thread-safe (one caller submits and waits); several pools in several
    threads are.
    """

    def __init__(self, policy: "Policy", analyse: "Analyse", size: int = 1) -> None:
        self.policy, self.size = policy, max(1, size)
        self._analyse = job_name(analyse)
        self.budgets = policy.budgets
        self.spill_used = 0
        self._policy_json = encode_policy(policy)
        self._policy_id = hashlib.sha256(self._policy_json).hexdigest()[:24]
        self._workers: list[_Worker] = []
        self._pending: collections.deque[Job] = collections.deque()  # submitted, not yet handed to a worker

    def __enter__(self) -> "WorkerPool":
        return self

    def start(self) -> None:
        """Start the zygote (and ask it for a worker) now, without waiting: the imports then overlap
        with the caller's own start-up (listing files) instead of delaying the first job."""
        _SHARED.prepare()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ jobs
    def submit(self, source: int | bytes, path: str, abspath: str | None = None) -> Job:
        """Queue the analysis of the open regular file `source` (a descriptor, passed to the worker)
        or of the content `source` (bytes: a small file the caller has read whole), reported as
        `path`; `abspath`: where it is on disk, for formats that look next to it."""
        return self.submit_many([(source, path, abspath)])

    def submit_many(self, files: list[tuple[int | bytes, str, str | None]]) -> Job:
        """Queue several files as one job (at most channel.MAX_FDS descriptors; contents travel in
        the message itself, which costs less than passing a descriptor)."""
        job = Job(list(files))
        self._send(job)
        return job

    def wait(self, job: Job) -> Outcome:
        """The outcome of a one-file job."""
        return self.wait_many(job)[0]

    def wait_many(self, job: Job) -> list[Outcome]:
        """The outcomes of a job's files, in order (jobs queued before it are settled on the way)."""
        while job.outcomes is None:
            if job.singles is not None:
                job.outcomes = [self.wait(single) for single in job.singles]
                break
            self.pump()
        return job.outcomes

    @property
    def busy(self) -> bool:
        """Whether any job is submitted and not answered yet."""
        return bool(self._pending) or any(w.queue for w in self._workers)

    def ready(self, job: Job) -> bool:
        """Whether `wait_many(job)` would return without waiting (after reading what has arrived)."""
        self.pump(0)
        return job.outcomes is not None or (job.singles is not None and all(s.outcomes is not None
                                                                            for s in job.singles))

    def _send(self, job: Job) -> None:
        self._pending.append(job)
        self._dispatch()

    def _dispatch(self) -> None:
        """Hand queued jobs to workers as they have room: an idle worker first, then a new one (up
        to `size`), then one whose queue is short. Jobs are handed out when a worker can take them,
        not all at submission, so a worker slowed by a large file does not hold work another one
        could do."""
        while self._pending:
            idle = [w for w in self._workers if not w.queue]
            if idle:
                worker = idle[0]
            elif len(self._workers) < self.size:
                worker = self._spawn()
            else:
                worker = min(self._workers, key=lambda w: len(w.queue))
                if len(worker.queue) >= DEPTH:
                    return
            self._assign(worker, self._pending.popleft())

    def _assign(self, worker: _Worker, job: Job) -> None:
        job.worker, job.sent, job.native = worker, time.monotonic(), None
        job.started = job.sent if not worker.queue else None
        worker.queue.append(job)
        header = json.dumps({"paths": [[path, abspath, len(src) if isinstance(src, bytes) else -1]
                                       for src, path, abspath in job.files],
                             "policy": self._policy_id, "analyse": self._analyse,
                             "spill": max(0, self.budgets.max_spill - self.spill_used)},
                            ensure_ascii=False).encode("utf-8", "surrogatepass")
        payload = b"".join([header, b"\n", *(src for src, _, _ in job.files if isinstance(src, bytes))])
        if self._policy_id not in worker.policies:
            worker.chan.post(b"C", self._policy_id.encode() + b"\n" + self._policy_json)
            worker.policies.add(self._policy_id)
        worker.chan.post(b"J", payload, fds=[src for src, _, _ in job.files if isinstance(src, int)])

    def pump(self, timeout: float | None = None) -> None:
        """Make progress without a particular job in mind: settle what the workers have answered,
        send what their sockets take, kill a worker past its head job's deadline, hand out queued
        jobs. Waits up to `timeout` seconds (None: until something happens) when nothing has."""
        busy = [w for w in self._workers if w.queue]
        now = time.monotonic()
        until = None
        for worker in busy:
            head = worker.queue[0]
            deadline = (head.started or head.sent) + self.budgets.max_seconds + GRACE
            end = deadline if head.native is None else min(deadline, head.native[1])
            if end <= now:
                limit = "native-time" if head.native is not None and head.native[1] <= deadline else "time"
                self._kill(worker)
                self._lost(worker, limit)
                self._dispatch()
                return
            until = end if until is None else min(until, end)
        poller = select.poll()
        for worker in busy:
            poller.register(worker.chan.fileno(), select.POLLIN | (select.POLLOUT if worker.chan.unsent else 0))
        wait = until - now if until is not None else None
        if timeout is not None:
            wait = timeout if wait is None else min(wait, timeout)
        events = dict(poller.poll(None if wait is None else max(0, int(wait * 1000) + 1))) if busy else {}
        if not busy and self._pending:
            self._dispatch()
        for worker in busy:
            if worker not in self._workers:
                continue
            event = events.get(worker.chan.fileno(), 0)
            if event & select.POLLOUT:
                worker.chan.flush()
            self._read(worker)
        self._dispatch()

    def _read(self, worker: _Worker) -> None:
        """Settle every message `worker` has sent (one socket read at most)."""
        try:
            messages = worker.chan.ready()
        except (ChannelClosed, MessageTooLarge, OSError) as exc:
            self._lost(worker, None, str(exc))
            return
        for kind, payload, fds in messages:
            for fd in fds:
                os.close(fd)
            if worker not in self._workers or not worker.queue:
                return
            head = worker.queue[0]
            if kind == b"N":
                try:
                    parser, seconds = json.loads(payload)
                except (ValueError, TypeError):
                    self._kill(worker)
                    self._lost(worker, None, "malformed message")
                    return
                head.native = (str(parser), time.monotonic() + float(seconds)) if parser else None
                head.parser = str(parser) if parser else head.parser
            elif kind == b"R":
                self._answered(worker, payload)

    def _answered(self, worker: _Worker, payload: bytes) -> None:
        head = worker.queue[0]
        lines = payload.split(b"\n")
        try:
            envelope = json.loads(lines[0])
            artefacts = [decode_artefact(line) for line in lines[1:]]
            if len(artefacts) != len(head.files):
                raise ValueError(f"{len(artefacts)} results for {len(head.files)} files")
        except ValueError as exc:
            self._kill(worker)
            self._lost(worker, None, str(exc))
            return
        worker.queue.popleft()
        if worker.queue:
            worker.queue[0].started = time.monotonic()
        spill = int(envelope.get("spill") or 0)
        self.spill_used += spill
        peak, seconds = int(envelope.get("peak_rss") or 0), float(envelope.get("seconds") or 0.0)
        base = int(envelope.get("baseline_rss") or worker.baseline)
        head.outcomes = [Outcome(a, peak_rss=peak, baseline_rss=base, seconds=seconds, spill=spill)
                         for a in artefacts]
        if envelope.get("retire"):
            self._retire(worker)

    def _lost(self, worker: _Worker, limit: str | None, error: str | None = None) -> None:
        """The worker is gone: a one-file head job gets the limit finding, a several-file one is
        run again file by file; the jobs queued behind it go to other workers."""
        head = worker.queue.popleft() if worker.queue else None
        died = (*self._retire(worker), worker.baseline)
        if head is None:
            return
        if len(head.files) > 1:
            head.singles = [self.submit(src, path, abspath) for src, path, abspath in head.files]
        else:
            head.outcomes = [self._limit_outcome(head, limit, died, error)]

    def _retire(self, worker: _Worker) -> tuple[int | None, int]:
        """Drop a worker (retired or dead) and requeue its unanswered jobs; its wait status and peak."""
        if worker in self._workers:
            self._workers.remove(worker)
        worker.chan.close()
        died = self._reap(worker.pid)
        rest, worker.queue = list(worker.queue), collections.deque()
        for job in rest:
            self._send(job)
        return died

    def _limit_outcome(self, job: Job, limit: str | None, died: tuple[int | None, int, int],
                       error: str | None) -> Outcome:
        """An artefact saying which limit ended the worker, from what we did and how it died."""
        elapsed = time.monotonic() - (job.started or job.sent)
        how = ""
        if limit is None:
            limit, how = _classify(*died, self.budgets.max_memory)
        path = job.files[0][1]
        artefact = Artefact(path=path, format=FormatName.UNKNOWN)
        rules = load_rules()
        loc = Location(path=path)
        during = f"in {job.parser}" if job.parser else "in the analysis"
        if limit == "memory":
            finding = rules.finding("MS-LIM-001", loc, limit=_mb(self.budgets.max_memory), during=during)
        elif limit in ("time", "native-time"):
            native = limit == "native-time"
            seconds = self.budgets.max_native_seconds if native else self.budgets.max_seconds
            finding = rules.finding("MS-LIM-002", loc, limit="max_native_seconds" if native else "max_seconds",
                                    seconds=f"{seconds:g}", during=during, elapsed=round(elapsed, 1))
        else:
            evidence: dict[str, Any] = {"error": error} if error else {}
            finding = rules.finding("MS-LIM-003", loc, how=how or "it stopped answering", during=during, **evidence)
        artefact.findings.append(finding)
        return Outcome(artefact, peak_rss=died[1], baseline_rss=died[2], seconds=elapsed, limit=limit)

    # ------------------------------------------------------------------ processes
    def _spawn(self) -> _Worker:
        worker = _SHARED.acquire()
        self._workers.append(worker)
        return worker

    def _kill(self, worker: _Worker) -> None:
        _SHARED.kill(worker)

    def _reap(self, pid: int) -> tuple[int | None, int]:
        """The worker's wait status and peak resident size, from the zygote that forked it."""
        return _SHARED.reap(pid)

    def close(self) -> None:
        """Give the idle workers back to the process's idle set (others are killed)."""
        self._pending.clear()
        for worker in self._workers:
            _SHARED.release(worker)
        self._workers.clear()


class _Shared:
    """The process's zygote and its idle workers (thread-safe)."""

    IDLE_MAX = 4

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.pid = 0
        self.ctl: Channel | None = None
        self.idle: list[_Worker] = []
        self.requested = 0  # workers asked of the zygote and not yet received

    def prepare(self) -> None:
        """Zygote up, and one worker asked for if none is idle (not waited for)."""
        with self.lock:
            if not self.idle and not self.requested:
                self._control().send(b"S")
                self.requested += 1

    def acquire(self) -> _Worker:
        with self.lock:
            if self.idle:
                return self.idle.pop()
            ctl = self._control()
            if self.requested:
                self.requested -= 1
            else:
                ctl.send(b"S")
            kind, payload, fds = self._reply(ctl)
            if kind != b"P" or len(fds) != 1:
                raise RuntimeError("the worker zygote did not start a worker")
            answer = json.loads(payload)
            return _Worker(int(answer["pid"]), Channel(socket.socket(fileno=fds[0]), max_message=MAX_RESULT),
                           baseline=int(answer.get("baseline") or 0))

    def release(self, worker: _Worker) -> None:
        with self.lock:
            if worker.queue or len(self.idle) >= self.IDLE_MAX:
                self.kill(worker)
                worker.chan.close()
                worker.queue.clear()
                self.reap(worker.pid)
            else:
                self.idle.append(worker)

    def kill(self, worker: _Worker) -> None:
        try:
            os.kill(worker.pid, signal.SIGKILL)  # the zygote's unreaped child: the pid is not reused
        except ProcessLookupError:
            pass

    def reap(self, pid: int) -> tuple[int | None, int]:
        with self.lock:
            if self.ctl is None:
                return None, 0
            try:
                self.ctl.send(b"W", str(pid).encode())
                kind, payload, _ = self._reply(self.ctl)
                answer = json.loads(payload) if kind == b"X" else {}
                return answer.get("status"), int(answer.get("peak_rss") or 0)
            except (ChannelClosed, OSError, RuntimeError, ValueError):
                self._lost_zygote()
                return None, 0

    def _control(self) -> Channel:
        if self.ctl is not None:
            return self.ctl
        from .child import libc, zygote_main

        libc()  # loaded here once, inherited by the zygote and its workers
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the zygote
            parent_end.close()
            zygote_main(child_end)
        child_end.close()
        self.pid, self.ctl, self.requested = pid, Channel(parent_end, exact=True), 0
        return self.ctl

    def _reply(self, ctl: Channel) -> tuple[bytes, bytes, list[int]]:
        try:
            message = ctl.recv(timeout=60)
        except (ChannelClosed, OSError) as exc:
            self._lost_zygote()
            raise RuntimeError(f"the worker zygote is gone: {exc}") from None
        if message is None:
            raise RuntimeError("the worker zygote does not answer")
        return message

    def _lost_zygote(self) -> None:
        """The zygote died (killed from outside): forget it; the next request starts another."""
        if self.ctl is not None:
            self.ctl.close()
        self.ctl = None
        for worker in self.idle:
            worker.chan.close()
        self.idle.clear()
        if self.pid:
            try:
                os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                pass
        self.pid = 0

    def shutdown(self) -> None:
        """At exit: end the idle workers and the zygote (closing its socket makes it kill and reap
        every worker), and reap it."""
        with self.lock:
            for worker in self.idle:
                worker.chan.close()
            self.idle.clear()
            if self.ctl is not None:
                self.ctl.close()
                self.ctl = None
            if self.pid:
                try:
                    os.waitpid(self.pid, 0)
                except ChildProcessError:
                    pass
                self.pid = 0

    def forget(self) -> None:
        """In a forked child: the zygote and workers belong to the parent; drop our copies."""
        self.lock = threading.RLock()
        for worker in self.idle:
            worker.chan.close()
        self.idle = []
        if self.ctl is not None:
            self.ctl.close()
        self.ctl, self.pid, self.requested = None, 0, 0


_SHARED = _Shared()
atexit.register(_SHARED.shutdown)
os.register_at_fork(after_in_child=_SHARED.forget)


def _classify(status: int | None, peak: int, baseline: int, cap: int) -> tuple[str, str]:
    """(limit, how) from a wait status and how far past its start the worker's resident size went.

    Near its cap, a process can die of a signal instead of a MemoryError (CPython itself faults
    on some failed allocations): such deaths count as the memory limit.
    """
    if status is None:
        return "crash", "it exited"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        if sig == signal.SIGKILL:
            return "memory", "killed by SIGKILL (the system's out-of-memory killer)"
        if peak - baseline >= cap * NEAR_CAP:
            return "memory", f"killed by {name} after growing by {_mb(peak - baseline)}"
        return "crash", f"killed by {name}"
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
    if code == _EXIT_MEMORY:
        return "memory", "out of memory"
    return "crash", f"exit status {code}"


def _mb(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB"
