"""The scan result model: the one contract between the engine and every renderer.

Nothing here knows about formats, the CLI or output syntaxes. A `Report` holds one `TargetResult`
per scanned target (a path, an `hf://` repo, a URL); each holds one `Artefact` per file, and each
artefact its `Finding`s. Verdicts are derived from findings, never stored separately.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Callable, TypedDict

REPORT_SCHEMA_VERSION = "1.0"


class Severity(enum.IntEnum):
    """Finding severity; ordered so that comparisons (`>=`) express `--fail-on`."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        """Parse a severity name (case-insensitive); raise ValueError on anything else."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (critical, high, medium, low, info)") from None

    def __str__(self) -> str:
        return self.name.lower()


class Kind(str, enum.Enum):
    """What a finding says about the artefact."""

    THREAT = "threat"  # the artefact can do something harmful when loaded -> unsafe
    INCONCLUSIVE = "inconclusive"  # part of the artefact could not be analysed -> never clean
    INFO = "info"  # an observation (inventory, custom op domain...) -> verdict unaffected


class Verdict(str, enum.Enum):
    """Verdict per artefact (and per report): never `clean` on an incomplete scan, and never
    `clean` when a policy waiver hid a threat or an inconclusive result (`waived`, which passes)."""

    CLEAN = "clean"
    WAIVED = "waived"
    UNSAFE = "unsafe"
    INCONCLUSIVE = "inconclusive"

    def __str__(self) -> str:
        return self.value


class Status(str, enum.Enum):
    """How far the scanner got with a file."""

    ANALYSED = "analysed"  # a format module analysed the content
    INVENTORIED = "inventoried"  # recognised or unknown data with nothing to execute: hashed only
    SKIPPED = "skipped"  # not read at all (filtered, unreadable, outside the target); has a reason


@dataclass
class Location:
    """Where a finding is: the file, the member path inside containers, byte offset, opcode index."""

    path: str
    member: str | None = None  # "archive/data.pkl", nested members joined with "!/"
    offset: int | None = None  # byte offset inside the member (or file when member is None)
    position: int | None = None  # opcode index inside the pickle stream
    stream: int | None = None  # which pickle stream of a file with several (0-based)
    line: int | None = None  # for source code and templates


@dataclass
class Suppression:
    """A policy waiver that matched a finding."""

    reason: str
    expires: str | None = None
    path_glob: str = "*"
    rule: str = "*"  # the rule id (glob) of the suppression that matched
    vex_state: str = "not_affected"
    vex_justification: str | None = None


@dataclass
class Finding:
    """One observation with a stable rule id. Severity and kind come from the rule table."""

    rule_id: str
    severity: Severity
    kind: Kind
    message: str
    location: Location
    title: str = ""
    callable: str | None = None  # e.g. "os.system"
    args: list[Any] | None = None  # constant-folded arguments where known (repr-safe values)
    cwe: list[str] = field(default_factory=list)
    atlas: list[str] = field(default_factory=list)
    cve: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)  # URLs
    recommendation: str = ""
    suppressed: Suppression | None = None
    evidence: dict[str, Any] = field(default_factory=dict)  # extra rule-specific facts
    # Repeats aggregated into this finding (same rule in the same file): how many, and where the
    # first of them are (the finding's own location first is not repeated here).
    occurrences: int = 1
    sites: list[Location] = field(default_factory=list)

    @property
    def active(self) -> bool:
        """False when a policy suppression waived this finding."""
        return self.suppressed is None


class FormatName(str, enum.Enum):
    """What the scan found a file to be (`Artefact.format`): a format module's name, a flavour one
    of them recognised, or a state. Compares equal to its value (`FormatName.ZIP == "zip"`)."""

    # format modules (formats/ORDER)
    ZIP = "zip"
    SEVENZIP = "sevenzip"
    COMPRESSED = "compressed"
    TAR = "tar"
    NUMPY = "numpy"
    HDF5 = "hdf5"
    GGUF = "gguf"
    SAFETENSORS = "safetensors"
    TORCH_LEGACY = "torch_legacy"
    PICKLE = "pickle"
    CHAT_TEMPLATE = "chat_template"
    MODEL_CARD = "model_card"
    HF_CONFIG = "hf_config"
    PYTHON_SOURCE = "python_source"
    KERAS_CONFIG = "keras_config"
    ONNX = "onnx"
    TENSORFLOW = "tensorflow"
    DATASET_FILES = "dataset_files"
    SENTENCEPIECE = "sentencepiece"
    TIKTOKEN = "tiktoken"
    GIT_LFS_POINTER = "git-lfs-pointer"
    PICKLE_TEXT = "pickle_text"
    TEXT = "text"
    # flavours a module names more precisely
    KERAS = "keras"
    TORCH_ZIP = "torch-zip"
    TORCHSCRIPT = "torchscript"
    JSON = "json"
    ONNX_EXTERNAL_DATA = "onnx-external-data"
    # states
    UNKNOWN = "unknown"  # nothing recognised the content
    EMPTY = "empty"  # 0 bytes
    NOT_READ = "-"  # skipped before reading (special file, link outside the target, not downloaded)

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @classmethod
    def parse(cls, text: str) -> "FormatName":
        """The member with this value; UNKNOWN for a name this version does not know (e.g. in a BOM)."""
        try:
            return cls(text)
        except ValueError:
            return cls.UNKNOWN


class TemplateSummary(TypedDict, total=False):
    """A chat template found in an artefact (`ArtefactProperties.chat_templates` items)."""

    field: str  # where it was (`tokenizer.chat_template`, `chat_template[tool_use]`...)
    chars: int
    sha256: str
    analysed: bool  # False: over the budget or not parseable (a finding says which)


class PythonSourceFacts(TypedDict, total=False):
    """What the Python analyser records about a code file (`ArtefactProperties.python_source`)."""

    role: str  # module | dataset_script
    lines: int
    imports: list[str]  # top-level modules
    relative_imports: list[str]  # as transformers finds them (fetched with the file)
    classes: list[str]
    urls: list[str]
    dataset_builders: list[str]
    reached_by: list[str]  # the loader paths that import the file (repo checks)
    review: dict[str, Any]  # the allowlist-first review (code_review)


# Facts format modules record about an artefact for the BOM and the cross-file checks, by key (the
# contents of the format-specific tables are documented by the module that writes them; members of
# containers are kept per member path).
ArtefactProperties = TypedDict("ArtefactProperties", {
    "python_source": PythonSourceFacts,
    "chat_templates": list[TemplateSummary],
    "hf_config": dict[str, Any],  # formats/hf_config.py (code_refs, stated settings...)
    "model_card": dict[str, Any],  # formats/model_card.py (card_data, sections, title)
    "model_card:members": dict[str, dict[str, Any]],
    "dataset_file": dict[str, Any],  # formats/dataset_files.py (kind, schema, rows)
    "gguf": dict[str, Any],
    "safetensors": dict[str, Any],
    "onnx": dict[str, Any],
    "onnx_external_data": dict[str, Any],  # which ONNX models claim this file as external data
    "tensorflow": dict[str, Any],
    "keras": dict[str, Any],
    "hdf5": dict[str, Any],
    "numpy": dict[str, Any],
    "pickle": dict[str, Any],
    "pickle_members": dict[str, dict[str, Any]],
    "torch_zip": dict[str, Any],
    "torch_legacy": dict[str, Any],
    "torchscript": dict[str, Any],
    "zip": dict[str, Any],
    "tar": dict[str, Any],
    "sevenzip": dict[str, Any],
    "compressed": dict[str, Any],
    "text": dict[str, Any],
    "sentencepiece": dict[str, Any],
    "tiktoken": dict[str, Any],
    "views": list[FormatName],  # dispatch: every loader's view of the file, when more than one
}, total=False)


@dataclass
class Artefact:
    """One file of a target, with its identity (size, hashes), format and findings."""

    path: str  # path relative to the target root ("." separators are "/")
    size: int = 0
    sha256: str | None = None
    sha512: str | None = None
    format: FormatName = FormatName.UNKNOWN  # the format module that took it, or a flavour it named
    status: Status = Status.ANALYSED
    reason: str | None = None  # why skipped / inventoried
    findings: list[Finding] = field(default_factory=list)
    members: list[str] = field(default_factory=list)  # container members seen
    properties: ArtefactProperties = field(default_factory=lambda: ArtefactProperties())  # facts for the BOM
    absolute_path: str | None = None  # where it was read from on disk (not rendered in JSON by default)
    # set when the analysis came from the result store: {"store", "analysed" (when), "verified" (how
    # the bytes were matched)}; rendered in JSON only then
    from_store: dict[str, str] | None = None

    @property
    def verdict(self) -> Verdict:
        """unsafe if an active threat finding exists, else inconclusive if analysis was incomplete,
        else waived if a waiver hid either, else clean."""
        return _own_verdict(self.findings)

    @property
    def max_severity(self) -> Severity | None:
        sev = [f.severity for f in self.findings if f.active and f.kind is not Kind.INCONCLUSIVE]
        return max(sev) if sev else None


class SignatureOutcome(str, enum.Enum):
    """What the OpenSSF model signature (OMS `model.sig`) check concluded for a target."""

    VALID = "valid"  # verifies, signer trusted, every file matches the signed manifest
    INVALID = "invalid"  # the signature does not verify, or files differ from what was signed
    UNTRUSTED = "untrusted"  # a good signature whose signer the trust policy does not trust
    UNVERIFIABLE = "unverifiable"  # present but not checkable here (format, key type, missing extra)
    UNSIGNED = "unsigned"  # no signature found
    NOT_CHECKED = "not-checked"  # no check was made (single file, URL, target error)

    def __str__(self) -> str:
        return self.value


@dataclass
class SignatureResult:
    """The signature check of one target. A valid signature never replaces content scanning."""

    outcome: SignatureOutcome = SignatureOutcome.NOT_CHECKED
    reason: str = ""  # one line: why this outcome
    method: str | None = None  # key | certificate | sigstore
    signer: str | None = None  # key fingerprint, certificate subject/SAN or keyless identity
    bundle: str | None = None  # where the signature was read (path relative to the root, or URL)
    bundle_sha256: str | None = None
    model_name: str | None = None  # the name the signature was made for
    root_digest: str | None = None  # the statement's subject digest
    serialization: dict[str, Any] = field(default_factory=dict)  # method, hash_type, shard_size...
    covered: list[str] = field(default_factory=list)  # files the signature covers and that match
    uncovered: list[str] = field(default_factory=list)  # present but not covered (ignored or added)
    differences: dict[str, list[str]] = field(default_factory=dict)  # changed/missing/added/renamed/symlinks
    unchecked: list[str] = field(default_factory=list)  # signed files not available here (not downloaded)
    legacy: bool = False  # pre-v1.0 predicate (model_signing v0.2): read, labelled
    reread_bytes: int = 0  # bytes read a second time (shard serialisation, non-SHA-256 hashes)
    trust: str | None = None  # the trust policy source that applied


class FileRecord(TypedDict, total=False):
    """A file a Hub repo publishes (an item of `Provenance.files`), and what became of it."""

    path: str
    size: int | None  # bytes, as the Hub lists it
    blob_id: str | None  # git blob id (SHA-1) the Hub lists
    lfs_sha256: str | None  # SHA-256 of the LFS content the Hub lists
    hub_scan: dict[str, Any] | None  # the Hub's own scanners' verdicts on the file
    downloaded: bool  # fetched by this scan
    from_store: bool  # not fetched: its published SHA-256 keys an analysis in the result store
    verified: str  # not-downloaded | store-sha256 | unverifiable | match | mismatch...
    _malformed: str  # transient: why a published hash is unusable (consumed by the verification)
    _reported: bool  # transient: a finding already says why the file was not scanned


class Provenance(TypedDict, total=False):
    """Where a target came from (`TargetResult.provenance`); a key is absent when its source does not
    tell. Hub repos and HF cache folders have `source` "huggingface", URLs "url"; local targets none."""

    source: str
    # Hugging Face Hub (hf://) and HF cache folders
    endpoint: str | None  # the Hub endpoint (the configured one for cache and offline targets)
    repo_id: str
    repo_type: str  # model | dataset
    revision: str | None  # as asked (branch, tag or commit)
    commit: str  # what the revision resolved to
    author: str | None
    private: bool | None
    gated: Any  # False or the gating mode ("auto", "manual")
    disabled: bool | None
    pipeline_tag: str | None
    library_name: str | None
    tags: list[str]
    card_data: Any  # the Hub API's model-card metadata (JSON-able)
    config: Any  # the Hub API's config summary (JSON-able)
    created_at: str | None  # ISO 8601
    last_modified: str | None
    security_status: Any  # the Hub's repo scan status (JSON-able)
    safetensors_total: int | None  # parameter count the Hub computed
    url: str | None  # the repo tree at the commit; for URL targets, the URL as given
    files: list[FileRecord]
    offline: bool  # read from the HF cache without asking the Hub
    cached_listing: bool  # the cache kept a listing of the revision's files
    # URL targets
    final_url: str  # after redirects
    status: int  # HTTP status
    content_type: str | None


@dataclass
class TargetResult:
    """A scanned target: where it came from (provenance) and the artefacts it holds."""

    target: str  # as the user gave it
    kind: str = "local"  # local | hf | hf-cache | url
    root: str | None = None  # local folder the artefact paths are relative to
    artefacts: list[Artefact] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # target-level (e.g. hash mismatch vs Hub, error)
    provenance: Provenance = field(default_factory=lambda: Provenance())  # repo id, commit, published files...
    error: str | None = None  # one-line reason when the target could not be scanned at all
    signature: SignatureResult = field(default_factory=SignatureResult)

    @property
    def verdict(self) -> Verdict:
        return combine([a.verdict for a in self.artefacts] + [_own_verdict(self.findings)] +
                       ([Verdict.INCONCLUSIVE] if self.error else []))


@dataclass
class RuntimePackage:
    """A loader library the deployment will use (from the environment, a requirements or lock file).

    `version` is None when it is not known (unpinned or unparseable requirement): never guessed.
    """

    name: str
    version: str | None = None
    source: str = ""  # "environment", "requirements.txt:12", "uv.lock"...
    purl: str | None = None  # pkg:pypi/name@version
    hashes: list[str] = field(default_factory=list)  # "sha256:<hex>" of the pinned distribution files
    license: str | None = None


@dataclass
class Report:
    """Everything one scan produced. Renderers read this and nothing else."""

    targets: list[TargetResult] = field(default_factory=list)
    runtime: list[RuntimePackage] = field(default_factory=list)  # loader libraries (advisories attach them)
    runtime_source: str | None = None  # where `runtime` came from ("environment:/usr/bin/python3"...)
    advisory_database: dict[str, Any] = field(default_factory=dict)  # kind, date, records, stale warning
    tool: str = "modelshield"
    tool_version: str = ""
    schema_version: str = REPORT_SCHEMA_VERSION
    started: str = ""  # ISO 8601 UTC
    finished: str = ""
    fail_on: Severity = Severity.HIGH
    policy: dict[str, Any] = field(default_factory=dict)  # policy source and digest

    @property
    def verdict(self) -> Verdict:
        return combine([t.verdict for t in self.targets])

    @property
    def artefacts(self) -> list[Artefact]:
        return [a for t in self.targets for a in t.artefacts]

    def all_findings(self) -> list[tuple[TargetResult, Artefact | None, Finding]]:
        """Every finding with the target and artefact it belongs to (artefact None: target-level)."""
        out: list[tuple[TargetResult, Artefact | None, Finding]] = []
        for t in self.targets:
            out += [(t, None, f) for f in t.findings]
            out += [(t, a, f) for a in t.artefacts for f in a.findings]
        return out

    @property
    def errors(self) -> list[str]:
        """One line per target that could not be scanned at all (unreachable, nothing scanned...)."""
        return [t.error for t in self.targets if t.error]

    def blocking(self) -> list[Finding]:
        """Active threat/info findings at or above the fail-on threshold."""
        return [f for _, _, f in self.all_findings()
                if f.active and f.kind is Kind.THREAT and f.severity >= self.fail_on]

    def exit_code(self, inconclusive_ok: bool = False) -> int:
        """0 passed; 1 blocked by findings at or above fail-on; 2 scan incomplete or error."""
        if self.blocking():
            return 1
        if any(t.error for t in self.targets):
            return 2
        incomplete = any(f.active and f.kind is Kind.INCONCLUSIVE for _, _, f in self.all_findings())
        return 2 if incomplete and not inconclusive_ok else 0

    def summary(self) -> dict[str, Any]:
        """Counts by status, verdict and severity, and skip reasons."""
        arts = self.artefacts
        out: dict[str, Any] = {
            "artefacts": len(arts),
            "analysed": sum(a.status is Status.ANALYSED for a in arts),
            "inventoried": sum(a.status is Status.INVENTORIED for a in arts),
            "skipped": sum(a.status is Status.SKIPPED for a in arts),
            "verdicts": {v.value: sum(a.verdict is v for a in arts) for v in Verdict},
            "findings": {str(s): 0 for s in sorted(Severity, reverse=True)},
            "suppressed": 0,
            "bytes": sum(a.size for a in arts),
            "skip_reasons": {},
        }
        for _, _, f in self.all_findings():
            if f.active:
                out["findings"][str(f.severity)] += 1
            else:
                out["suppressed"] += 1
        for a in arts:
            if a.status is Status.SKIPPED:
                key = a.reason or "unspecified"
                out["skip_reasons"][key] = out["skip_reasons"].get(key, 0) + 1
        return out


def _own_verdict(findings: list[Finding]) -> Verdict:
    active = [f for f in findings if f.active]
    if any(f.kind is Kind.THREAT for f in active):
        return Verdict.UNSAFE
    if any(f.kind is Kind.INCONCLUSIVE for f in active):
        return Verdict.INCONCLUSIVE
    if any(f.kind is not Kind.INFO for f in findings if not f.active):
        return Verdict.WAIVED
    return Verdict.CLEAN


def combine(verdicts: list[Verdict]) -> Verdict:
    """unsafe beats inconclusive beats waived beats clean."""
    for verdict in (Verdict.UNSAFE, Verdict.INCONCLUSIVE, Verdict.WAIVED):
        if verdict in verdicts:
            return verdict
    return Verdict.CLEAN


def to_dict(obj: Any, artefacts: Callable[[int, "TargetResult"], Any] | None = None) -> Any:
    """Plain-data view of any result object (enums as their names/values), for JSON renderers.

    `artefacts(i, target)`: what to put in target i's "artefacts" instead of the converted list
    (a renderer that streams the artefacts one by one puts a placeholder there).
    """
    if isinstance(obj, Report):
        d = _fields(obj)
        d["verdict"] = obj.verdict.value
        d["summary"] = obj.summary()
        d["fail_on"] = str(obj.fail_on)
        d["targets"] = [_target(t, _nth(artefacts, i)) for i, t in enumerate(obj.targets)]
        return d
    if isinstance(obj, TargetResult):
        return _target(obj, None)
    if isinstance(obj, Artefact):
        d = _fields(obj)
        d.pop("absolute_path", None)
        if d.get("from_store") is None:
            d.pop("from_store", None)
        d["verdict"] = obj.verdict.value
        return d
    return _plain(obj)


def _nth(artefacts: Callable[[int, "TargetResult"], Any] | None, i: int) -> Callable[["TargetResult"], Any] | None:
    if artefacts is None:
        return None
    return lambda target: artefacts(i, target)


def _target(target: TargetResult, artefacts: Callable[[TargetResult], Any] | None) -> dict[str, Any]:
    d = _fields(target, skip="artefacts")
    d["verdict"] = target.verdict.value
    d["artefacts"] = artefacts(target) if artefacts else [to_dict(a) for a in target.artefacts]
    return d


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _fields(obj: Any, skip: str = "") -> dict[str, Any]:
    """A dataclass instance as a dict in field order, values made plain (what `asdict` + `_plain`
    gave, without deep-copying everything first: 100,000 artefacts must not take minutes)."""
    names = _FIELD_NAMES.get(type(obj))
    if names is None:
        names = _FIELD_NAMES[type(obj)] = tuple(f.name for f in fields(obj))
    return {name: (None if name == skip else _plain(getattr(obj, name))) for name in names}


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    kind = type(value)  # exact types first: a report holds hundreds of thousands of these
    if kind in _SCALARS:
        return value
    if kind is dict:
        return {k: v if type(v) in _SCALARS else _plain(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [v if type(v) in _SCALARS else _plain(v) for v in value]
    if isinstance(value, Severity):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if is_dataclass(value) and not isinstance(value, type):
        return _fields(value)
    return value
