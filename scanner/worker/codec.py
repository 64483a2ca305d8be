"""Artefacts across the process boundary as tagged JSON, never as pickles.

A worker has parsed hostile bytes; if a parser bug let the file take it over, the worker must not
be able to run code in the parent through its answer. JSON decoding builds only plain data, so the
parent rebuilds the result dataclasses field by field from it. Tuples, bytes, sets and dicts with
non-string keys are tagged so that values keep their Python types (the text output prints `repr`
of call arguments); anything else is sent as its `repr`.
"""
from __future__ import annotations

import datetime as _dt
import enum
import json
import types
import typing
from dataclasses import fields, is_dataclass
from typing import Any

from ..findings import Artefact, ArtefactProperties, Finding, FormatName, Kind, Location, Severity, Status

MAX_DEPTH = 64  # deeper values are sent as their repr
_TAG = "\x00t"  # key marking a tagged value (no JSON the scanner builds uses it)


def _enc(value: Any, depth: int = 0) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (int, float)):
        return value
    if depth >= MAX_DEPTH:
        return {_TAG: "repr", "v": _short_repr(value)}
    if isinstance(value, list):
        return [_enc(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        return {_TAG: "tuple", "v": [_enc(v, depth + 1) for v in value]}
    if isinstance(value, dict):
        if all(type(k) is str for k in value) and _TAG not in value:
            return {k: _enc(v, depth + 1) for k, v in value.items()}
        return {_TAG: "dict", "v": [[_enc(k, depth + 1), _enc(v, depth + 1)] for k, v in value.items()]}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {_TAG: "bytes", "v": bytes(value).hex()}
    if isinstance(value, (set, frozenset)):
        return {_TAG: "set", "v": [_enc(v, depth + 1) for v in value]}
    return {_TAG: "repr", "v": _short_repr(value)}


def _short_repr(value: Any, limit: int = 2000) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # noqa: BLE001 - a broken __repr__ must not lose the result
        text = f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _untag(value: dict[str, Any]) -> Any:
    """json object_hook: a tagged value back to its Python type (plain dicts pass through)."""
    tag = value.get(_TAG)
    if tag is None:
        return value
    body: Any = value["v"]
    if tag == "tuple":
        return tuple(body)
    if tag == "dict":
        return {_hashable(k): v for k, v in body}
    if tag == "bytes":
        return bytes.fromhex(body)
    if tag == "set":
        return {_hashable(v) for v in body}
    return str(body)


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


# Fields holding only str/int/None/lists of str: sent as they are, without the tagging walk.
_PLAIN_ARTEFACT = ("path", "size", "sha256", "sha512", "format", "reason", "members", "absolute_path")
_PLAIN_FINDING = ("rule_id", "message", "title", "callable", "cwe", "atlas", "cve", "references",
                  "recommendation", "occurrences")
_LOCATION = ("path", "member", "offset", "position", "stream", "line")


def encode_artefact(artefact: Artefact) -> bytes:
    """The artefact as UTF-8 JSON (surrogate escapes of undecodable file names kept).

    Call arguments keep their exact types (the text report prints their repr); properties and
    evidence, which reports only render as JSON, go as JSON would render them (tuples as lists).
    """
    data = {k: getattr(artefact, k) for k in _PLAIN_ARTEFACT}
    data["status"] = artefact.status.value
    data["properties"] = artefact.properties
    data["findings"] = [_finding_fields(f) for f in artefact.findings]
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=_default)
    except (TypeError, ValueError, RecursionError):  # keys JSON cannot hold, or too deep: tag everything
        data["properties"] = _enc(artefact.properties)
        for f, fields_ in zip(artefact.findings, data["findings"]):
            fields_["evidence"] = _enc(f.evidence)
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=_default)
    return text.encode("utf-8", "surrogatepass")


def _default(value: Any) -> Any:
    """json.dumps fallback for what JSON has no type for: tagged where reversible, else repr."""
    return _enc(value)


def _finding_fields(finding: Finding) -> dict[str, Any]:
    data = {k: getattr(finding, k) for k in _PLAIN_FINDING}
    data["severity"] = int(finding.severity)
    data["kind"] = finding.kind.value
    data["args"] = _enc(finding.args)
    data["evidence"] = finding.evidence
    data["location"] = [getattr(finding.location, k) for k in _LOCATION]
    data["sites"] = [[getattr(site, k) for k in _LOCATION] for site in finding.sites]
    return data


def decode_artefact(raw: bytes) -> Artefact:
    """Rebuild an artefact from `encode_artefact` output; ValueError if it is not one."""
    try:
        data = json.loads(raw.decode("utf-8", "surrogatepass"), object_hook=_untag)
        findings = [_finding(f) for f in data.pop("findings")]
        plain = {k: data[k] for k in _PLAIN_ARTEFACT}
        plain["format"] = FormatName(plain["format"])
        artefact = Artefact(**plain, properties=ArtefactProperties(**data["properties"]),
                            status=Status(data["status"]))
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise ValueError(f"malformed worker result: {type(exc).__name__}: {exc}"[:300]) from None
    artefact.findings = findings
    return artefact


def _finding(data: dict[str, Any]) -> Finding:
    return Finding(**{k: data[k] for k in _PLAIN_FINDING}, severity=Severity(data["severity"]),
                   kind=Kind(data["kind"]), args=data["args"], evidence=dict(data["evidence"]),
                   location=Location(*data["location"]), sites=[Location(*site) for site in data["sites"]])


# --- policies -----------------------------------------------------------------------------------
# Workers outlive a scan and serve every policy of the process: the policy travels as JSON too.
# Generic over dataclass fields (typed by their annotations), so fields added to Policy travel
# without a change here; a field of a type this cannot rebuild fails loudly, never silently.

# Policy fields only the scanning process reads (signatures are verified there, never in a worker):
# a worker gets their defaults. The trust policy holds key objects JSON cannot carry.
PARENT_ONLY = frozenset({"trust"})


def encode_policy(policy: Any) -> bytes:
    """A Policy (or any dataclass of JSON values, enums, dates and dataclasses) as JSON, without
    the PARENT_ONLY fields."""
    plain = _dc_plain(policy, skip=PARENT_ONLY)
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def decode_policy(raw: bytes) -> Any:
    from ..policy import Policy

    return _dc_build(Policy, json.loads(raw))


def _dc_plain(value: Any, skip: frozenset[str] = frozenset()) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _dc_plain(getattr(value, f.name)) for f in fields(value) if f.name not in skip}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _dc_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_dc_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot send a {type(value).__name__} to a worker")


def _dc_build(kind: Any, value: Any) -> Any:
    """Rebuild `value` as the annotated type `kind` (dataclass, enum, date, list/dict of those)."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
        origin = typing.get_origin(kind)
    if value is None:
        return None
    if is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        build: Any = kind
        return build(**{f.name: _dc_build(hints[f.name], value[f.name]) for f in fields(kind)
                       if f.init and f.name in value})
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind(value)
    if kind is _dt.date:
        return _dt.date.fromisoformat(value)
    if kind is _dt.datetime:
        return _dt.datetime.fromisoformat(value)
    if origin is list:
        (item,) = typing.get_args(kind) or (Any,)
        return [_dc_build(item, v) for v in value]
    if origin is dict:
        _, item = typing.get_args(kind) or (Any, Any)
        return {k: _dc_build(item, v) for k, v in value.items()}
    return value
