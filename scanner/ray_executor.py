"""`--executor ray`: the analysis of a scan's files as Ray tasks on a cluster the user runs.

Install with `pip install "modelshield[ray]"`; the cluster is the one in RAY_ADDRESS (`ray start
--head` makes one), else Ray starts a local one. The driver (the `modelshield scan` process)
resolves targets (downloads, listings), runs the repo-level checks and writes the report; each
task analyses a batch of files under the worker hard limits (a limits worker process inside the
task) and returns the artefacts as tagged JSON (`worker.codec`), never as pickles. Workers read the
files by path: the cluster's nodes must see the driver's paths (one machine, or shared storage).

A task that fails (an exception, a lost worker or node) is retried `RETRIES` times, then each of
its files becomes an inconclusive artefact (MS-GEN-006) naming the failure: never dropped, never
clean. Per-node throughput (files, bytes, seconds) is kept in `stats` for the CLI to print.
"""
from __future__ import annotations

import importlib
import socket
import time
from collections import deque
from typing import Any, Callable, Iterable, Iterator

from . import env
from .errors import RayUnavailable
from .findings import Artefact, Location
from .policy import Policy
from .rules import load_rules

FileEntry = tuple[str, str, int]
BATCH = 8  # files per task
IN_FLIGHT = 4  # tasks queued per CPU of the cluster
RETRIES = 2


def _analyse_batch(policy_json: bytes, batch: list[FileEntry]) -> tuple[list[bytes], dict[str, Any]]:
    """The Ray task: scan (hash + analyse under the worker limits) `batch` on this node."""
    from . import engine
    from .worker import WorkerPool, available
    from .worker.codec import decode_policy, encode_artefact

    ray = importlib.import_module("ray")
    policy = decode_policy(policy_json)
    start = time.perf_counter()
    if available():
        with WorkerPool(policy, engine.analyse_open_file, size=1) as pool:
            artefacts = list(engine.scan_files(batch, policy, None, pool))
    else:
        artefacts = list(engine.scan_files(batch, policy, None, None))
    node = ray.get_runtime_context().get_node_id()
    return [encode_artefact(a) for a in artefacts], {"node": node, "files": len(artefacts),
                                                     "bytes": sum(a.size for a in artefacts),
                                                     "seconds": time.perf_counter() - start}


class RayExecutor:
    """Runs `scan_files` batches as Ray tasks; use as the engine's `executor`."""

    def __init__(self, address: str | None = None) -> None:
        try:
            self.ray: Any = importlib.import_module("ray")
        except ImportError:
            raise RayUnavailable("--executor ray needs Ray (pip install \"modelshield[ray]\")") from None
        address = address or env.ray_address()
        _reachable(address)
        try:
            if not self.ray.is_initialized():
                self.ray.init(address=address, ignore_reinit_error=True, log_to_driver=False,
                              configure_logging=False)
        except Exception as exc:  # noqa: BLE001 - any connection problem is one line, exit 2
            raise RayUnavailable(f"Ray cluster {address or '(RAY_ADDRESS or local)'}: "
                                 f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
                                 ) from None
        self.task = self.ray.remote(max_retries=RETRIES, retry_exceptions=True)(_analyse_batch)
        cpus = int(self.ray.cluster_resources().get("CPU", 1))
        self.in_flight = max(1, cpus * IN_FLIGHT)
        self.stats: dict[str, dict[str, float]] = {}  # node id -> files, bytes, seconds

    def __call__(self, entries: Iterable[FileEntry | Artefact], policy: Policy,
                 progress: Callable[[str, str, int], None] | None = None) -> Iterator[Artefact]:
        """The artefacts of `entries`, in order (an Artefact among them passes through)."""
        from .worker.codec import decode_artefact, encode_policy

        policy_ref = self.ray.put(encode_policy(policy))
        queue: deque[tuple[Any, list[FileEntry | Artefact]]] = deque()
        batch: list[FileEntry | Artefact] = []

        def submit() -> None:
            files = [e for e in batch if not isinstance(e, Artefact)]
            queue.append((self.task.remote(policy_ref, files) if files else None, list(batch)))
            batch.clear()

        def settle() -> Iterator[Artefact]:
            ref, items = queue.popleft()
            files = [e for e in items if not isinstance(e, Artefact)]
            results: list[Artefact] = []
            if ref is not None:
                try:
                    payloads, stat = self.ray.get(ref)
                    results = [decode_artefact(p) for p in payloads]
                    node = self.stats.setdefault(stat["node"], {"files": 0, "bytes": 0, "seconds": 0.0})
                    for k in ("files", "bytes", "seconds"):
                        node[k] += stat[k]
                except Exception as exc:  # noqa: BLE001 - retried by Ray already: inconclusive, never dropped
                    reason = str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else type(exc).__name__
                    results = [_failed(rel, path, size, reason) for rel, path, size in files]
            it = iter(results)
            for item in items:
                if isinstance(item, Artefact):
                    yield item
                else:
                    artefact = next(it)
                    if progress:
                        progress("advance", artefact.path, artefact.size)
                    yield artefact

        for entry in entries:
            batch.append(entry)
            if len(batch) >= BATCH or isinstance(entry, Artefact):
                submit()
                while len(queue) > self.in_flight:
                    yield from settle()
        if batch:
            submit()
        while queue:
            yield from settle()

    def close(self) -> None:
        """Disconnect from the cluster (its threads in this process stop printing)."""
        try:
            self.ray.shutdown()
        except Exception:  # noqa: BLE001 - a cluster gone at the end changes nothing scanned
            pass

    def describe(self) -> list[str]:
        """One line per node: files, bytes and the rates its tasks reached."""
        lines = []
        for node, s in sorted(self.stats.items()):
            secs = s["seconds"] or 1e-9
            lines.append(f"ray node {node[:12]}: {int(s['files'])} files, {s['bytes'] / 1e6:.1f} MB in {secs:.1f} s "
                         f"of task time ({s['files'] / secs:.1f} files/s, {s['bytes'] / 1e6 / secs:.1f} MB/s)")
        return lines


def _reachable(address: str | None, timeout: float = 5.0) -> None:
    """A `host:port` cluster address must accept connections (ray.init retries for minutes)."""
    if not address or "://" in address or address == "auto" or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        raise RayUnavailable(f"Ray cluster {address}: {getattr(exc, 'strerror', None) or exc}") from None


def _failed(relpath: str, abspath: str, size: int, reason: str) -> Artefact:
    artefact = Artefact(path=relpath, absolute_path=abspath, size=size)
    artefact.findings.append(load_rules().finding("MS-GEN-006", Location(path=relpath), format="ray task",
                                                  error=f"the task failed after {RETRIES + 1} tries: {reason}"))
    return artefact
