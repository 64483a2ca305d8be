"""Severity of an advisory from its CVSS vectors (scored with the `cvss` library)."""
from __future__ import annotations

from dataclasses import dataclass

from modelshield.scanner.findings import Severity

_GHSA_WORDS = {"CRITICAL": Severity.CRITICAL, "HIGH": Severity.HIGH, "MODERATE": Severity.MEDIUM,
               "MEDIUM": Severity.MEDIUM, "LOW": Severity.LOW}


@dataclass(frozen=True)
class Score:
    method: str  # CVSSv2 | CVSSv3 | CVSSv31 | CVSSv4
    vector: str
    score: float
    severity: Severity


def score(kind: str, vector: str) -> Score | None:
    """Base score of one OSV severity entry (None when the vector does not parse)."""
    from cvss import CVSS2, CVSS3, CVSS4
    from cvss.exceptions import CVSSError

    try:
        if vector.startswith("CVSS:4.0/"):
            v4 = CVSS4(vector)
            return Score("CVSSv4", vector, float(v4.base_score), from_score(float(v4.base_score)))
        if vector.startswith("CVSS:3."):
            v3 = CVSS3(vector)
            method = "CVSSv31" if vector.startswith("CVSS:3.1/") else "CVSSv3"
            return Score(method, vector, float(v3.base_score), from_score(float(v3.base_score)))
        if kind == "CVSS_V2":
            v2 = CVSS2(vector)
            return Score("CVSSv2", vector, float(v2.base_score), from_score(float(v2.base_score)))
    except (CVSSError, ValueError, KeyError, IndexError):
        return None
    return None


def from_score(value: float) -> Severity:
    if value >= 9.0:
        return Severity.CRITICAL
    if value >= 7.0:
        return Severity.HIGH
    if value >= 4.0:
        return Severity.MEDIUM
    return Severity.LOW if value > 0 else Severity.INFO


def scores(severity: tuple[tuple[str, str], ...]) -> list[Score]:
    return [s for kind, vector in severity if (s := score(kind, vector)) is not None]


def rate(severity: tuple[tuple[str, str], ...], database_specific: object = None) -> Severity:
    """The highest CVSS base severity; else the database's word (GHSA `severity`); else high."""
    found = scores(severity)
    if found:
        return max(s.severity for s in found)
    if isinstance(database_specific, dict):
        word = str(database_specific.get("severity", "")).upper()
        if word in _GHSA_WORDS:
            return _GHSA_WORDS[word]
    return Severity.HIGH
