"""Known-malicious artefacts by SHA-256: the shipped list (data/known_bad.json) plus the policy's."""
from __future__ import annotations

from typing import Any

from modelshield.scanner.findings import Artefact, Finding, Location
from modelshield.scanner.rules import load_rules
from . import tables


def shipped() -> dict[str, dict[str, str]]:
    """sha256 -> {source, reference, repo, note} (lower-case hex keys)."""
    data = tables.load_json("known_bad.json")
    return {k.lower(): v for k, v in data.get("artefacts", {}).items()}


def table(extra: dict[str, dict[str, str]] | None = None) -> dict[str, dict[str, str]]:
    out = dict(shipped())
    out.update({k.lower(): v for k, v in (extra or {}).items()})
    return out


def check(artefact: Artefact, bad: dict[str, dict[str, str]]) -> Finding | None:
    """A critical finding when the artefact's SHA-256 (from the scan pass) is listed."""
    return lookup(artefact.path, artefact.sha256, bad)


def lookup(path: str, sha256: str | None, bad: dict[str, dict[str, str]]) -> Finding | None:
    entry: dict[str, Any] | None = bad.get((sha256 or "").lower())
    if entry is None:
        return None
    reference = entry.get("reference") or entry.get("ref") or ""
    finding = load_rules().finding("MS-ADV-005", Location(path=path), path=path, sha256=sha256,
                                   source=entry.get("source", "a known-bad list"), reference=reference,
                                   repo=entry.get("repo", ""), note=entry.get("note", ""),
                                   reference_text=f" ({reference})" if reference else "")
    if reference.startswith("http"):
        finding.references = [reference]
    return finding
