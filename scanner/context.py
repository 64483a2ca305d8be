"""Per-artefact analysis state that format modules receive: findings sink, member path, budgets."""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Protocol

from .budgets import Budgets
from .errors import BudgetExceeded
from .findings import Artefact, Finding, FormatName, Location
from .rules import RuleTable, load_rules

MAX_PER_RULE = 100  # findings of one rule listed one by one per artefact; later ones are folded
MAX_SITES = 50  # locations (and callables) kept in a folded finding

if TYPE_CHECKING:
    from .blob import Blob
    from .policy import Policy


class Dispatcher(Protocol):
    """Identify a blob by content and analyse it into `ctx`; returns the format name.

    `modelshield.scanner.dispatch.analyse_blob` is the one implementation; the context holds it so
    that formats and analysers recurse without importing the layer above them.
    """

    def __call__(self, blob: "Blob", ctx: "ScanContext", name: str) -> FormatName: ...


@dataclass
class ScanContext:
    """What a format module gets besides its bytes.

    Modules report through `add`, descend into members through `descend`, and charge
    budgets through `charge_decompressed` / `check_time`. The member path and depth are kept here so
    findings in nested content carry their full location.
    """

    artefact: Artefact
    policy: "Policy"
    budgets: Budgets = field(default_factory=Budgets)
    rules: RuleTable = field(default_factory=load_rules)
    members: list[str] = field(default_factory=list)
    container_depth: int = 0
    nested_depth: int = 0
    decompressed: int = 0
    compressed: int = 0
    deadline: float = 0.0
    # Name hints from the enclosing container (e.g. a torch zip passes its record layout down).
    hints: dict[str, Any] = field(default_factory=dict)
    # What `descend` calls: bound by `dispatch.analyse_blob` (or given by whoever builds the context).
    dispatcher: Dispatcher | None = None
    # Findings per rule so far, and the finding later ones of that rule are folded into.
    rule_counts: dict[str, int] = field(default_factory=dict, repr=False)
    folds: dict[str, Finding] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.deadline:
            self.deadline = time.monotonic() + self.budgets.max_seconds

    @property
    def member(self) -> str | None:
        return "!/".join(self.members) if self.members else None

    def loc(self, offset: int | None = None, position: int | None = None, stream: int | None = None,
            line: int | None = None) -> Location:
        """A location at the current member path."""
        return Location(path=self.artefact.path, member=self.member, offset=offset, position=position,
                        stream=stream, line=line)

    def add(self, rule_id: str, *, offset: int | None = None, position: int | None = None,
            stream: int | None = None, line: int | None = None, **kw: Any) -> Finding:
        """Record a finding of `rule_id` at the current member (kw: callable, args, severity, evidence).

        Past MAX_PER_RULE findings of one rule in the artefact, further ones are folded into one
        finding (`occurrences`, the first `MAX_SITES` `sites`, the first callables in evidence), so
        a file with 100,000 distinct imports yields a bounded report.
        """
        loc = self.loc(offset, position, stream, line)
        count = self.rule_counts.get(rule_id, 0) + 1
        self.rule_counts[rule_id] = count
        fold = self.folds.get(rule_id)
        if fold is not None:
            fold.occurrences += 1
            if len(fold.sites) < MAX_SITES:
                fold.sites.append(loc)
            callables = fold.evidence.setdefault("folded_callables", [])
            name = kw.get("callable")
            if name and len(callables) < MAX_SITES and name not in callables:
                callables.append(name)
            return fold
        finding = self.rules.finding(rule_id, loc, **kw)
        self.artefact.findings.append(finding)
        if count == MAX_PER_RULE:
            self.folds[rule_id] = finding
        return finding

    def drop_findings(self, mark: int) -> None:
        """Remove the findings added since `len(artefact.findings) == mark` (a view replaced them)."""
        del self.artefact.findings[mark:]
        self.rule_counts.clear()
        for f in self.artefact.findings:
            self.rule_counts[f.rule_id] = self.rule_counts.get(f.rule_id, 0) + 1
        kept = {id(f) for f in self.artefact.findings}
        self.folds = {k: f for k, f in self.folds.items() if id(f) in kept}

    @contextlib.contextmanager
    def enter(self, member: str, *, container: bool = False, nested: bool = False) -> Iterator["ScanContext"]:
        """Descend into a member (container member or nested payload), under the depth budgets."""
        if container and self.container_depth >= self.budgets.max_container_depth:
            raise BudgetExceeded("max_container_depth", self.budgets.max_container_depth)
        if nested and self.nested_depth >= self.budgets.max_nested_depth:
            raise BudgetExceeded("max_nested_depth", self.budgets.max_nested_depth)
        self.members.append(member)
        self.container_depth += container
        self.nested_depth += nested
        try:
            yield self
        finally:
            self.members.pop()
            self.container_depth -= container
            self.nested_depth -= nested

    def descend(self, blob: "Blob", name: str, *, member: str | None = None, container: bool = True,
                nested: bool = False, record: bool = True) -> str:
        """Identify `blob` (called `name`) by content and analyse it as a member; returns the format name.

        `member`: the label in the member path (default `name`); `container`: charge the
        container-depth budget; `nested`: charge the nested-payload budget; `record`: list the
        member on the artefact.
        """
        if self.dispatcher is None:
            raise RuntimeError("ScanContext.descend: no dispatcher (analyse through dispatch.analyse_blob)")
        with self.enter(name if member is None else member, container=container, nested=nested):
            if record:
                self.record_member()
            return self.dispatcher(blob, self, name)

    def record_member(self) -> None:
        """List the current member path on the artefact (once)."""
        if self.member and self.member not in self.artefact.members:
            self.artefact.members.append(self.member)

    def charge_decompressed(self, n: int, compressed: int = 0) -> None:
        """Account for `n` more decompressed bytes produced from `compressed` more input bytes.

        Raises BudgetExceeded past the total cap, or when the artefact's cumulative ratio
        (all decompressed / all compressed input) exceeds max_ratio past `ratio_floor` bytes.
        """
        self.decompressed += n
        self.compressed += compressed
        if self.decompressed > self.budgets.max_decompressed:
            raise BudgetExceeded("max_decompressed", self.budgets.max_decompressed)
        if self.compressed and self.decompressed > self.budgets.ratio_floor and \
                self.decompressed > self.compressed * self.budgets.max_ratio:
            raise BudgetExceeded("max_ratio", self.budgets.max_ratio)

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise BudgetExceeded("max_seconds", self.budgets.max_seconds)
