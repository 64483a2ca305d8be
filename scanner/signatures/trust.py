"""The trust policy: which keys, CAs and identities are trusted for which targets.

`[trust]` in modelshield.toml (or a file given with `--trust`, holding the same table or its keys
at top level)::

    [trust]
    require = false                       # every target must carry a valid signature

    [[trust.signer]]
    name = "acme release key"              # a label shown as the signer
    targets = ["models/acme-*", "hf://acme/*"]   # globs over the target (default: every target)
    public_keys = ["keys/release.pub"]     # EC public keys (PEM), paths relative to this file
    cas = ["pki/root.pem"]                 # trusted root certificates (PEM bundles)
    identities = ["release@acme.example"]  # pinned SANs (certificates) / identities (keyless)
    issuer = "https://accounts.example"    # keyless: the OIDC issuer that must have vouched
    sigstore_trust_root = "trusted_root.json"   # keyless: the Sigstore trust root, offline
    model_name = "acme-7b"                 # the name the signature must be made for
    require = true                         # a valid signature is required for these targets

Entries matching a target are combined: any of their keys, CAs or identities may sign it. No
web-PKI or system roots are ever used: a CA is trusted only when listed.
"""
from __future__ import annotations

import fnmatch
import os
import sys
from dataclasses import dataclass, field
from typing import Any
from ..errors import TrustError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SUPPORTED_CURVES = {"secp256r1", "secp384r1", "secp521r1"}
_KEYS = {"name", "targets", "public_keys", "cas", "identities", "issuer", "sigstore_trust_root", "model_name",
         "require"}


@dataclass
class TrustedKey:
    label: str
    key: Any  # a cryptography public key (any type; non-EC keys make signatures unverifiable)
    hint: str  # hex SHA-256 of its PEM SubjectPublicKeyInfo (the OMS key hint)


@dataclass
class TrustSet:
    """Everything trusted for one target (the union of the matching entries)."""

    keys: list[TrustedKey] = field(default_factory=list)
    cas: list[Any] = field(default_factory=list)  # cryptography x509.Certificate roots
    identities: list[str] = field(default_factory=list)
    issuers: list[str] = field(default_factory=list)
    sigstore_trust_root: str | None = None
    model_name: str | None = None
    require: bool = False
    labels: list[str] = field(default_factory=list)
    source: str | None = None

    @property
    def configured(self) -> bool:
        """True when some signer is trusted for the target."""
        return bool(self.keys or self.cas or self.identities or self.sigstore_trust_root)


@dataclass
class _Entry:
    targets: list[str]
    trust: TrustSet


@dataclass
class TrustPolicy:
    """The parsed `[trust]` table."""

    require: bool = False
    entries: list[_Entry] = field(default_factory=list)
    source: str | None = None

    @classmethod
    def from_file(cls, path: str) -> "TrustPolicy":
        """A `--trust` file: a `[trust]` table, or its keys at top level."""
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise TrustError(f"{path}: {exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise TrustError(f"{path}: not valid TOML: {exc}") from None
        if isinstance(data.get("trust"), dict):
            data = data["trust"]
        return cls.from_mapping(data, path)

    @classmethod
    def from_mapping(cls, data: Any, source: str = "<mapping>") -> "TrustPolicy":
        """Validate `[trust]`; file paths are relative to the folder of `source`."""
        if not isinstance(data, dict):
            raise TrustError(f"{source}: [trust] must be a table")
        unknown = set(data) - {"require", "signer"}
        if unknown:
            raise TrustError(f"{source}: unknown [trust] key(s) {', '.join(sorted(unknown))}")
        base = os.path.dirname(os.path.abspath(source)) if os.path.exists(source) else os.getcwd()
        policy = cls(require=_bool(data.get("require", False), "trust.require", source), source=source)
        signers = data.get("signer", [])
        if not isinstance(signers, list):
            raise TrustError(f"{source}: trust.signer must be an array of tables ([[trust.signer]])")
        for i, raw in enumerate(signers):
            policy.entries.append(_entry(raw, f"{source}: trust.signer[{i}]", base))
        return policy

    def for_target(self, names: list[str]) -> TrustSet:
        """The union of the entries whose `targets` match any of the target's names."""
        out = TrustSet(require=self.require, source=self.source)
        for entry in self.entries:
            if not any(fnmatch.fnmatchcase(n, pat) for n in names for pat in entry.targets):
                continue
            t = entry.trust
            out.keys += t.keys
            out.cas += t.cas
            out.identities += t.identities
            out.issuers += t.issuers
            out.sigstore_trust_root = out.sigstore_trust_root or t.sigstore_trust_root
            out.model_name = out.model_name or t.model_name
            out.require = out.require or t.require
            out.labels += t.labels
        return out

    def merged(self, other: "TrustPolicy | None") -> "TrustPolicy":
        """This policy plus another's entries (the policy file's `[trust]` and `--trust`)."""
        if other is None:
            return self
        sources = " + ".join(s for s in (self.source, other.source) if s)
        return TrustPolicy(require=self.require or other.require, entries=self.entries + other.entries,
                           source=sources or None)


def _entry(raw: Any, where: str, base: str) -> _Entry:
    if not isinstance(raw, dict):
        raise TrustError(f"{where} must be a table")
    unknown = set(raw) - _KEYS
    if unknown:
        raise TrustError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    label = raw.get("name")
    if label is not None and not isinstance(label, str):
        raise TrustError(f"{where}.name must be a string")
    trust = TrustSet(require=_bool(raw.get("require", False), f"{where}.require", where))
    for path in _strings(raw, "public_keys", where):
        trust.keys += load_public_keys(_path(base, path), label)
    for path in _strings(raw, "cas", where):
        trust.cas += load_certificates(_path(base, path))
    trust.identities = _strings(raw, "identities", where)
    issuer = raw.get("issuer")
    if issuer is not None:
        if not isinstance(issuer, str) or not issuer:
            raise TrustError(f"{where}.issuer must be a string")
        trust.issuers = [issuer]
    root = raw.get("sigstore_trust_root")
    if root is not None:
        if not isinstance(root, str) or not os.path.isfile(_path(base, root)):
            raise TrustError(f"{where}.sigstore_trust_root: no such file {root!r}")
        trust.sigstore_trust_root = _path(base, root)
    name = raw.get("model_name")
    if name is not None and not isinstance(name, str):
        raise TrustError(f"{where}.model_name must be a string")
    trust.model_name = name
    trust.labels = [label] if label else []
    targets = _strings(raw, "targets", where) or ["*"]
    return _Entry(targets=targets, trust=trust)


def load_public_keys(path: str, label: str | None = None) -> list[TrustedKey]:
    """Every PEM public key in a file (TrustError when none can be read)."""
    from cryptography.hazmat.primitives import serialization

    data = _read(path)
    keys = []
    for block in _pem_blocks(data, b"PUBLIC KEY"):
        try:
            key = serialization.load_pem_public_key(block)
        except (ValueError, TypeError) as exc:
            raise TrustError(f"{path}: not a PEM public key ({exc})") from None
        keys.append(TrustedKey(label or os.path.basename(path), key, key_hint(key)))
    if not keys:
        raise TrustError(f"{path}: no PEM public key (-----BEGIN PUBLIC KEY-----) in the file")
    return keys


def load_certificates(path: str) -> list[Any]:
    """Every PEM certificate in a file (TrustError when none can be read)."""
    from cryptography import x509

    data = _read(path)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise TrustError(f"{path}: not a PEM certificate bundle ({exc})") from None
    return certs


def key_hint(key: Any) -> str:
    """The OMS key hint: hex SHA-256 of the key serialised as PEM SubjectPublicKeyInfo."""
    import hashlib

    from cryptography.hazmat.primitives import serialization

    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


def key_problem(key: Any) -> str | None:
    """Why a key cannot verify OMS signatures (None when it can)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    if not isinstance(key, ec.EllipticCurvePublicKey):
        return f"{type(key).__name__.lstrip('_')} keys are not OMS signing keys (ECDSA P-256/384/521 only)"
    if key.curve.name not in SUPPORTED_CURVES:
        return f"curve {key.curve.name} is not supported (P-256, P-384, P-521)"
    return None


def _pem_blocks(data: bytes, label: bytes) -> list[bytes]:
    out, start = [], 0
    begin, end = b"-----BEGIN " + label + b"-----", b"-----END " + label + b"-----"
    while (i := data.find(begin, start)) != -1:
        j = data.find(end, i)
        if j == -1:
            break
        out.append(data[i:j + len(end)] + b"\n")
        start = j + len(end)
    return out


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(1 << 20)
    except OSError as exc:
        raise TrustError(f"{path}: {exc.strerror or exc}") from None


def _path(base: str, path: str) -> str:
    return path if os.path.isabs(path) else os.path.join(base, os.path.expanduser(path))


def _strings(raw: dict[str, Any], key: str, where: str) -> list[str]:
    value = raw.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise TrustError(f"{where}.{key} must be a list of strings")
    return list(value)


def _bool(value: Any, key: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise TrustError(f"{where}: {key} must be true or false")
    return value
