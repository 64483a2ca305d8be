"""Turning VM events into findings: one finding per (rule, callable, stream), sites counted.

The first site of each (rule, callable) in a stream is the finding's location; later sites of the
same pair only extend the finding's `sites` (bounded) and `occurrences`, so a model
with 500 instances of one user class gives one finding per rule, not 500.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...findings import Finding

if TYPE_CHECKING:
    from ...context import ScanContext

MAX_SITES = 50


class Reporter:
    """Findings sink for one `analyse_pickle` call (shared by all its streams)."""

    def __init__(self, ctx: ScanContext) -> None:
        self.ctx = ctx
        self.seen: dict[tuple, Finding] = {}

    def add(self, rule_id: str, *, stream: int, offset: int | None, position: int | None,
            callable: str | None = None, args: list[Any] | None = None, key: Any = None,
            **evidence: Any) -> Finding:
        """Add (or count another site of) a finding; `key` overrides the dedup identity."""
        ident = (rule_id, callable if key is None else key, stream, tuple(self.ctx.members))
        found = self.seen.get(ident)
        if found is not None:
            found.occurrences += 1
            if len(found.sites) < MAX_SITES:
                found.sites.append(self.ctx.loc(offset, position, stream))
            return found
        kw: dict[str, Any] = dict(evidence)
        if callable is not None:
            kw["callable"] = callable
        if args is not None:
            kw["args"] = args
        finding = self.ctx.add(rule_id, offset=offset, position=position, stream=stream, **kw)
        self.seen[ident] = finding
        return finding
