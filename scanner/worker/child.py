"""The processes behind `WorkerPool`: a zygote that forks workers, and the worker loop.

The zygote is forked once from the scanning process when the pool starts; it imports the format
modules and then only forks workers, so a worker starts in about a millisecond with everything
loaded, and no worker is ever forked from a process running other threads. A worker sets its hard
limits once (address space sized so its resident memory stays under `max_memory`, no core files),
then serves jobs until it is told to stop, is killed, or retires after a job that left it large.

Everything here ends in `os._exit`: a forked process never returns into the caller's code.
"""
from __future__ import annotations

import importlib
import json
import os
import resource
import signal
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, NoReturn

from ..errors import ChannelClosed
from .channel import Channel

if TYPE_CHECKING:
    from ..policy import Policy  # noqa: F401

EXIT_MEMORY = 86  # the worker ran out of memory where it could not even answer
STACK = 64 << 20  # the analysis thread's stack (deep parses recurse in C too)
RETIRE_GROWTH = 64 << 20  # a worker whose resident size grew this much past its start retires
RETIRE_FILES = 100_000
_PR_SET_PDEATHSIG = 1


def zygote_main(ctl: socket.socket) -> NoReturn:
    """Serve the parent's requests: S = fork a worker (answer P + pid, with its socket), W pid =
    reap it (answer X + exit status and peak resident size). Exits when the parent closes the
    control socket."""
    code = 0
    try:
        _detach(keep=ctl.fileno())
        _preload()
        chan = Channel(ctl, exact=True)
        workers: set[int] = set()
        try:
            while True:
                kind, payload, _ = _recv(chan)
                if kind == b"S":
                    parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
                    pid = os.fork()
                    if pid == 0:
                        parent_end.close()
                        ctl.close()
                        worker_main(child_end)
                    child_end.close()
                    workers.add(pid)
                    answer = json.dumps({"pid": pid, "baseline": _status("VmRSS")}).encode()
                    chan.send(b"P", answer, fds=[parent_end.fileno()])
                    parent_end.close()
                elif kind == b"W":
                    pid = int(payload)
                    status = peak = None
                    if pid in workers:
                        _, status, usage = os.wait4(pid, 0)
                        peak = usage.ru_maxrss * 1024
                    workers.discard(pid)
                    chan.send(b"X", json.dumps({"pid": pid, "status": status, "peak_rss": peak}).encode())
        except ChannelClosed:
            for pid in workers:
                _kill(pid)
            for pid in workers:
                _reap(pid)
    except BaseException:  # noqa: BLE001 - a forked process must never unwind into the caller
        code = 1
    finally:
        os._exit(code)


def worker_main(sock: socket.socket) -> NoReturn:
    """Set the hard limits, then analyse the files of each job message until the socket closes.

    The jobs run in a thread whose whole stack is mapped before the address-space cap is set: a
    stack that had to grow under the cap would die of SIGSEGV instead of a clean MemoryError.
    """
    result = [1]

    def run() -> None:
        try:
            result[0] = _serve(Channel(sock, exact=True))
        except MemoryError:
            result[0] = EXIT_MEMORY
        except BaseException:  # noqa: BLE001 - see zygote_main
            result[0] = 1

    try:
        _die_with_parent()  # also M_ARENA_MAX=1 before the thread starts: no arena of its own
        threading.stack_size(STACK)
        thread = threading.Thread(target=run, name="analysis")
        thread.start()
        thread.join()
    finally:
        os._exit(result[0])


def _serve(chan: Channel) -> int:
    """Policies (C) and jobs (J, one or more open files each) arrive in order; each job is answered
    (R). The memory cap and the native-call limit follow the job's policy."""
    from ..blob import SPILL
    from . import native
    from .codec import decode_policy, encode_artefact

    _die_with_parent()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    baseline, start_vm = _status("VmRSS"), _status("VmSize")
    policies: dict[str, Policy] = {}
    cap = None
    files = 0
    while True:
        try:
            kind, payload, fds = _recv(chan)
        except ChannelClosed:
            return 0
        if kind == b"C":
            name, _, raw = payload.partition(b"\n")
            policies[name.decode()] = decode_policy(raw)
            continue
        header, _, contents = payload.partition(b"\n")
        job = json.loads(header) if kind == b"J" else {}
        paths = job.get("paths") or []
        policy = policies.get(job.get("policy", ""))
        analyse = _job_function(job.get("analyse", ""))
        sources = _sources(paths, fds, memoryview(contents))
        if sources is None or not paths or policy is None or analyse is None:
            for fd in fds:
                os.close(fd)
            if kind == b"J":
                return 1  # a job without its policy: the parent is confused; start afresh
            continue
        budgets = policy.budgets
        if cap != start_vm + budgets.max_memory:
            cap = start_vm + budgets.max_memory
            _limit_memory(cap)
        native.install(lambda parser, seconds: chan.send(b"N", json.dumps([parser, seconds]).encode()),
                       budgets.max_native_seconds)
        _reset_peak()
        started = time.monotonic()
        SPILL.reset(job.get("spill"))
        bodies = []
        try:
            for source, (path, abspath, _) in zip(sources, paths):
                bodies.append(encode_artefact(analyse(source, path, policy, abspath)))
        finally:
            for fd in fds:
                os.close(fd)
        files += len(paths)
        peak = _status("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        retire = files >= RETIRE_FILES or (peak > baseline + RETIRE_GROWTH and
                                           _status("VmRSS") > baseline + RETIRE_GROWTH)
        envelope = {"peak_rss": peak, "baseline_rss": baseline, "seconds": time.monotonic() - started,
                    "spill": SPILL.used, "retire": retire}
        chan.send(b"R", b"\n".join([json.dumps(envelope).encode(), *bodies]))
        if retire:
            return 0


def _sources(paths: list[list[Any]], fds: list[int], contents: memoryview) -> list[Any] | None:
    """Each file's descriptor (length -1) or content (a slice of the message); None if they do
    not add up."""
    out: list[Any] = []
    fd_iter, offset = iter(fds), 0
    for _, _, length in paths:
        if length < 0:
            fd = next(fd_iter, None)
            if fd is None:
                return None
            out.append(fd)
        else:
            out.append(contents[offset:offset + length])
            offset += length
    if offset != len(contents) or next(fd_iter, None) is not None:
        return None
    return out


def _job_function(name: str) -> Any:
    """The job function `module:function` (pool.job_name); None if it is not one of ours."""
    module, _, function = name.partition(":")
    if not module.startswith(__name__.partition(".")[0] + ".") or not function:
        return None
    try:
        return getattr(importlib.import_module(module), function, None)
    except ImportError:
        return None


def _recv(chan: Channel) -> tuple[bytes, bytes, list[int]]:
    message = chan.recv()
    assert message is not None  # no timeout given
    return message


def _detach(keep: int) -> None:
    """Zygote start: own signal dispositions, no inherited descriptors but stdio and `keep`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    _die_with_parent()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.closerange(3, keep)
    os.closerange(keep + 1, 1 << 16)
    from ..env import single_threaded_native_libraries

    single_threaded_native_libraries()


def _preload() -> None:
    """Import what every job needs once, before forking workers (they share it copy-on-write)."""
    from .. import formats  # the job's own module is already imported by the process that forked us
    from ..rules import load_rules
    from ..suffixes import loader_suffixes

    formats.modules()
    load_rules()
    loader_suffixes()


def libc() -> Any:
    """The C library through ctypes, loaded once (by the scanning process, before it forks)."""
    global _LIBC
    if _LIBC is None:
        try:
            import ctypes

            _LIBC = ctypes.CDLL(None, use_errno=True)
        except (OSError, ImportError):
            _LIBC = False
    return _LIBC or None


_LIBC: Any = None


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the process that forked us dies (no orphaned workers)."""
    lib = libc()
    try:
        lib.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        lib.mallopt(-8, 1)  # M_ARENA_MAX=1: no 64 MB arena per thread
    except AttributeError:
        pass


def _limit_memory(cap: int) -> None:
    """Cap the address space at `cap` bytes (the worker's size at its start plus `max_memory`).

    Resident memory can only grow with the address space (pages already mapped at the start, such
    as those shared with the scanning process, were resident or not before), so the worker's
    resident size stays under its size at the start plus `max_memory`, whatever the parser does.
    Only the soft limit is set, so the next job's policy can move it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _status(field: str) -> int:
    """A size from /proc/self/status in bytes (0 where /proc is missing)."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(field.encode() + b":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _reset_peak() -> None:
    """Start this job's peak resident size afresh (Linux: VmHWM back to the current size)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
