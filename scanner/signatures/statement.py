"""The signed content: DSSE pre-authentication encoding and the OMS in-toto statement.

OMS v1.0 (`https://model_signing/signature/v1.0`): one subject named after the model folder whose
`sha256` is the root digest (SHA-256 over the raw resource digests in listed order, whatever the
hash type), `predicate.serialization` (method, hash_type, allow_symlinks, shard_size,
ignore_paths) and `predicate.resources` sorted by name. Verifiers ignore other predicate fields.
The legacy predicate `https://model_signing/Digests/v0.1` (model_signing v0.2) lists files as
subjects, with no model name and no serialization block: read, labelled legacy.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from .bundle import IN_TOTO_PAYLOAD_TYPE
from ..errors import StatementError

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_V1 = "https://model_signing/signature/v1.0"
PREDICATE_LEGACY = "https://model_signing/Digests/v0.1"
HASH_TYPES = {"sha256": 32, "blake2b": 64, "blake2": 64, "blake3": 32}
DEFAULT_IGNORES = (".git", ".gitattributes", ".github", ".gitignore")
MAX_RESOURCES = 1_000_000
_HEX = re.compile(r"^[0-9a-f]+$")


@dataclass
class Resource:
    name: str  # POSIX relative path, or "path:start:end" for shards
    algorithm: str
    digest: str  # lower-case hex


@dataclass
class Statement:
    model_name: str | None
    root_digest: str | None
    method: str  # "files" | "shards"
    hash_type: str
    allow_symlinks: bool
    shard_size: int | None
    ignore_paths: list[str]
    resources: list[Resource] = field(default_factory=list)
    legacy: bool = False

    def serialization(self) -> dict[str, Any]:
        """The serialization parameters as the statement states them."""
        out: dict[str, Any] = {"method": self.method, "hash_type": self.hash_type,
                               "allow_symlinks": self.allow_symlinks}
        if self.shard_size is not None:
            out["shard_size"] = self.shard_size
        if self.ignore_paths:
            out["ignore_paths"] = list(self.ignore_paths)
        return out


def pae(payload: bytes, payload_type: str = IN_TOTO_PAYLOAD_TYPE) -> bytes:
    """DSSE v1 pre-authentication encoding: `DSSEv1 <len type> <type> <len payload> <payload>`."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def pae_legacy(payload: bytes, payload_type: str = IN_TOTO_PAYLOAD_TYPE) -> bytes:
    """The encoding model_signing before 1.0 signed by mistake (`DSSEV1` and the payload's repr);
    reproduced exactly so that those signatures verify (and are labelled legacy)."""
    return f"DSSEV1 {len(payload_type)} {payload_type} {len(payload)} {payload!r}".encode("utf-8")


def root_digest(resources: list[Resource]) -> str:
    """SHA-256 over the concatenated raw resource digests, in listed order."""
    h = hashlib.sha256()
    for r in resources:
        h.update(bytes.fromhex(r.digest))
    return h.hexdigest()


def parse(payload: bytes) -> Statement:
    """Parse and check a statement; StatementError says why it cannot be used."""
    try:
        doc = json.loads(payload.decode("utf-8"))
    except RecursionError:
        raise StatementError("the signed statement nests JSON too deeply") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise StatementError("the signed payload is not a JSON in-toto statement") from None
    if not isinstance(doc, dict):
        raise StatementError("the signed payload is not a JSON object")
    if doc.get("_type") != STATEMENT_TYPE:
        raise StatementError(f"statement type {_short(doc.get('_type'))} is not {STATEMENT_TYPE}")
    predicate_type = doc.get("predicateType")
    subjects = doc.get("subject")
    if not isinstance(subjects, list):
        raise StatementError("the statement has no subject list")
    if predicate_type == PREDICATE_LEGACY:
        return _legacy(subjects)
    if predicate_type != PREDICATE_V1:
        raise StatementError(f"predicate type {_short(predicate_type)} is not an OMS model signature")
    if len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise StatementError(f"the statement has {len(subjects)} subjects; OMS v1.0 has exactly one")
    name = subjects[0].get("name")
    digest = subjects[0].get("digest")
    root = digest.get("sha256") if isinstance(digest, dict) else None
    if not isinstance(name, str) or not isinstance(root, str) or not _is_hex(root, 32):
        raise StatementError("the subject needs a name and a 64-hex sha256 root digest")
    predicate = doc.get("predicate")
    if not isinstance(predicate, dict):
        raise StatementError("the statement has no predicate object")
    statement = _serialization(predicate.get("serialization"))
    statement.model_name, statement.root_digest = name, root.lower()
    statement.resources = _resources(predicate.get("resources"), statement)
    names = [r.name for r in statement.resources]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise StatementError(f"the resource {dup!r} is listed twice", invalid=True)
    if names != sorted(names):
        at = next(i for i in range(1, len(names)) if names[i - 1] > names[i])
        raise StatementError(f"the resources are not sorted by name ({names[at - 1]!r} before {names[at]!r}): "
                             "not a canonical OMS manifest", invalid=True)
    computed = root_digest(statement.resources)
    if computed != statement.root_digest:
        raise StatementError(f"the root digest {statement.root_digest[:16]}... does not match the resources "
                             f"({computed[:16]}...)", invalid=True)
    return statement


def _serialization(raw: Any) -> Statement:
    if not isinstance(raw, dict):
        raise StatementError("the predicate has no serialization block")
    method = raw.get("method")
    if method not in ("files", "shards"):
        raise StatementError(f"serialization method {_short(method)} is not supported (files, shards)")
    hash_type = raw.get("hash_type")
    if hash_type not in HASH_TYPES:
        raise StatementError(f"hash type {_short(hash_type)} is not supported ({', '.join(HASH_TYPES)})")
    allow = raw.get("allow_symlinks", False)
    if isinstance(allow, str) and allow.lower() in ("true", "false"):
        allow = allow.lower() == "true"
    if not isinstance(allow, bool):
        raise StatementError("serialization allow_symlinks is not a boolean")
    shard_size = None
    if method == "shards":
        shard_size = _int(raw.get("shard_size"))
        if shard_size is None or shard_size <= 0:
            raise StatementError("serialization shard_size is not a positive integer")
    ignores = raw.get("ignore_paths", [])
    if not isinstance(ignores, list) or not all(isinstance(p, str) for p in ignores) or len(ignores) > 10_000:
        raise StatementError("serialization ignore_paths is not a list of paths")
    return Statement(model_name=None, root_digest=None, method=method, hash_type=hash_type, allow_symlinks=allow,
                     shard_size=shard_size, ignore_paths=list(ignores))


def _resources(raw: Any, statement: Statement) -> list[Resource]:
    if not isinstance(raw, list):
        raise StatementError("the predicate has no resource list")
    if len(raw) > MAX_RESOURCES:
        raise StatementError(f"the predicate lists {len(raw)} resources (at most {MAX_RESOURCES})")
    size = HASH_TYPES[statement.hash_type]
    algorithms = {statement.hash_type}
    if statement.method == "shards":
        algorithms.add(f"{statement.hash_type}-sharded-{statement.shard_size}")
    out = []
    for item in raw:
        if not isinstance(item, dict):
            raise StatementError("a resource is not an object")
        name, algorithm, digest = item.get("name"), item.get("algorithm"), item.get("digest")
        if not isinstance(name, str) or not name or not isinstance(digest, str) or not _is_hex(digest, size):
            raise StatementError(f"resource {_short(name)} needs a name and a {size * 2}-hex digest")
        if algorithm not in algorithms:
            raise StatementError(f"resource {name!r} uses algorithm {_short(algorithm)}, not the statement's "
                                 f"{statement.hash_type}", invalid=True)
        out.append(Resource(name, algorithm, digest.lower()))
    return out


def _legacy(subjects: list[Any]) -> Statement:
    statement = Statement(model_name=None, root_digest=None, method="files", hash_type="sha256",
                          allow_symlinks=False, shard_size=None, ignore_paths=list(DEFAULT_IGNORES), legacy=True)
    if len(subjects) > MAX_RESOURCES:
        raise StatementError(f"the statement lists {len(subjects)} subjects (at most {MAX_RESOURCES})")
    for item in subjects:
        name = item.get("name") if isinstance(item, dict) else None
        digest = item.get("digest") if isinstance(item, dict) else None
        value = digest.get("sha256") if isinstance(digest, dict) else None
        if not isinstance(name, str) or not name or not isinstance(value, str) or not _is_hex(value, 32):
            raise StatementError("a legacy subject needs a name and a 64-hex sha256 digest")
        statement.resources.append(Resource(name, "sha256", value.lower()))
    statement.resources.sort(key=lambda r: r.name)
    return statement


def build(model_name: str, resources: list[Resource], serialization: dict[str, Any]) -> bytes:
    """The OMS v1.0 statement for signing (resources must already be sorted by name)."""
    doc = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": model_name, "digest": {"sha256": root_digest(resources)}}],
        "predicateType": PREDICATE_V1,
        "predicate": {
            "serialization": serialization,
            "resources": [{"name": r.name, "algorithm": r.algorithm, "digest": r.digest} for r in resources],
        },
    }
    return json.dumps(doc, indent=2, ensure_ascii=False).encode("utf-8")


def _int(value: Any) -> int | None:
    # protobuf's Struct carries numbers as doubles: model_signing writes 1000000000.0 at times
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def _is_hex(text: str, size: int) -> bool:
    return len(text) == size * 2 and bool(_HEX.match(text.lower()))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
