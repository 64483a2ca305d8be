"""Keras .keras / .h5 / JSON config analysis: real-library fixtures, crafted gadgets, loader proofs."""
from __future__ import annotations

import base64
import json
import marshal
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import pytest
from hypothesis import given, settings, strategies as st

from helpers.cli import scan_json
from modelshield.scanner.blob import BytesBlob
from modelshield.scanner.context import ScanContext
from modelshield.scanner.dispatch import analyse_blob
from modelshield.scanner.engine import scan
from modelshield.scanner.findings import Artefact, Kind, Severity, Verdict
from modelshield.scanner.formats import keras as keras_flavour
from modelshield.scanner.formats.interface import Member
from modelshield.scanner.analysis.marshal_reader import parse_marshal_code
from modelshield.scanner.errors import MarshalError
from modelshield.scanner.policy import Policy

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("keras_real")
    marker = out / "MARKER"
    proc = subprocess.run([sys.executable, str(HERE / "keras_fixture_builder.py"), str(out), str(marker)],
                          capture_output=True, text=True, timeout=240,
                          env={**os.environ, "KERAS_BACKEND": "torch"})
    assert "built" in proc.stdout, proc.stderr[-3000:]
    return out


def _one(path: Path):
    report = scan(str(path))
    assert len(report.artefacts) == 1
    return report.artefacts[0]


def _ids(artefact) -> list[str]:
    return sorted(f.rule_id for f in artefact.findings)


def _keras_zip(path: Path, config, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1", "date_saved": "x"}))
        zf.writestr("config.json", config if isinstance(config, str) else json.dumps(config))
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


def _model_with(layer_config: dict) -> dict:
    return {"module": "keras", "class_name": "Sequential", "registered_name": None,
            "config": {"name": "seq", "layers": [layer_config]}}


def _fn(module: str, name: str) -> dict:
    return {"module": module, "class_name": "function", "config": name, "registered_name": name}


# --- benign models from the real library: clean, nothing above info -------------------------

@pytest.mark.parametrize("name", ["benign.keras", "benign.h5", "benign_functional.keras", "benign_config.json"])
def test_benign_real_models_are_clean(built, name):
    art = _one(built / name)
    assert art.verdict is Verdict.CLEAN, [(f.rule_id, f.message) for f in art.findings]
    assert all(f.severity is Severity.INFO for f in art.findings)
    assert art.format in ("zip", "hdf5", "keras_config")


def test_benign_properties_for_the_bom(built):
    art = _one(built / "benign.keras")
    keras_props = art.properties["keras"]
    assert keras_props["keras_version"].startswith("3.")
    assert keras_props["layer_classes"]["Dense"] == 2 and keras_props["lambda_layers"] == 0
    h5 = _one(built / "benign.h5").properties["hdf5"]
    assert h5["keras"]["layer_classes"]["Dense"] == 2 and h5["backend"] == "torch"


# --- Lambda bytecode -------------------------------------------------------------------------

@pytest.mark.parametrize("name,cves", [("lambda.keras", {"CVE-2024-3660"}),
                                       ("lambda.h5", {"CVE-2024-3660", "CVE-2025-9905"})])
def test_lambda_marker_is_critical(built, name, cves):
    art = _one(built / name)
    assert art.verdict is Verdict.UNSAFE
    lam = [f for f in art.findings if f.rule_id == "MS-KERAS-001"]
    assert len(lam) == 1 and lam[0].severity is Severity.CRITICAL
    assert cves <= set(lam[0].cve)
    assert "open" in lam[0].evidence["names"] and "write" in lam[0].evidence["names"]
    assert lam[0].evidence["layer"] == "lambda"


def test_harmless_lambda_is_still_a_high_threat(built):
    art = _one(built / "lambda_plain.keras")
    [lam] = [f for f in art.findings if f.rule_id == "MS-KERAS-001"]
    assert lam.severity is Severity.HIGH and lam.evidence["dangerous"] == []
    assert art.verdict is Verdict.UNSAFE


def _recode(src: Path, dst: Path, recode) -> None:
    """Copy a .keras archive, passing every `__lambda__` code string through `recode`."""
    def walk(node):
        if isinstance(node, dict):
            if node.get("class_name") == "__lambda__" and isinstance(node.get("config"), dict):
                node["config"]["code"] = recode(node["config"]["code"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "config.json":
                config = json.loads(data)
                walk(config)
                data = json.dumps(config).encode()
            zout.writestr(info, data)


def _raw_unicode(code: str) -> str:
    """The same bytecode as a string keras' base64 step rejects (non-ASCII), so func_load falls back
    to `code.encode("raw_unicode_escape")`, which gives the marshal bytes back."""
    raw = base64.b64decode(code)
    assert any(b > 127 for b in raw)
    return raw.decode("latin-1")


@pytest.fixture(scope="module")
def raw_lambda(built, tmp_path_factory) -> Path:
    """lambda.keras with its Lambda code as a raw-unicode-escape string instead of base64."""
    path = tmp_path_factory.mktemp("keras_raw") / "raw.keras"
    _recode(built / "lambda.keras", path, _raw_unicode)
    return path


@pytest.fixture(scope="module")
def proof(built, raw_lambda) -> dict[str, str]:
    """One real-loader subprocess (importing keras is the slow part) for every Lambda fixture:
    keras.load_model(safe_mode=False) + predict, the marker removed before each file.
    {file name: "True" when that file's load wrote the marker}."""
    files = [str(built / "lambda.keras"), str(built / "lambda.h5"), str(raw_lambda)]
    build_marker = built / "MARKER"  # the path the fixtures' lambdas write
    proc = subprocess.run([sys.executable, str(HERE / "keras_loader_proof.py"), str(build_marker), *files],
                          capture_output=True, text=True, timeout=240, env={**os.environ, "KERAS_BACKEND": "torch"})
    lines = dict(line.split() for line in proc.stdout.strip().splitlines())
    assert set(lines) == {"lambda.keras", "lambda.h5", "raw.keras"}, proc.stderr[-3000:]
    return {**lines, "stderr": proc.stderr[-3000:]}


def test_real_loader_runs_the_lambda_markers(proof):
    """Proof in a subprocess: keras.load_model(safe_mode=False) executes both Lambda fixtures."""
    assert (proof["lambda.keras"], proof["lambda.h5"]) == ("True", "True"), proof["stderr"]


def test_raw_unicode_escape_payload_runs_under_keras_and_is_critical(proof, raw_lambda):
    """keras' func_load decodes a payload that is not base64 from its raw-unicode-escape bytes:
    the real loader runs it, and the scan reports it as the critical Lambda it is."""
    assert proof["raw.keras"] == "True", proof["stderr"]
    report = scan(str(raw_lambda))
    [f] = [f for _, _, f in report.all_findings() if f.rule_id == "MS-KERAS-001"]
    assert f.severity.name == "CRITICAL" and "open" in f.evidence["dangerous"], f.evidence


@pytest.mark.parametrize("payload", ["not marshal data at all", "QUJD", ""])
def test_undecodable_lambda_payload_is_inconclusive_and_never_clean(built, tmp_path, payload):
    """A payload that decodes neither way is inconclusive as well as a Lambda (never clean)."""
    path = tmp_path / "bad.keras"
    _recode(built / "lambda.keras", path, lambda code: payload)
    report = scan(str(path))
    ids = {f.rule_id: f for _, _, f in report.all_findings()}
    assert "MS-KERAS-006" in ids and ids["MS-KERAS-001"].severity.name == "HIGH"
    assert report.verdict.value != "clean"


def test_legacy_keras2_lambda_list_format(tmp_path):
    code = base64.b64encode(marshal.dumps((lambda x: __import__("subprocess").call("id")).__code__)).decode()
    layer = {"class_name": "Lambda", "config": {"name": "legacy", "function": [code, None, None],
                                                "function_type": "lambda", "module": "__main__",
                                                "output_shape": None, "output_shape_type": "raw"}}
    art = _one(_keras_zip(tmp_path / "legacy.keras", _model_with(layer)))
    [lam] = [f for f in art.findings if f.rule_id == "MS-KERAS-001"]
    assert lam.severity is Severity.CRITICAL and "subprocess" in lam.evidence["dangerous"]


def test_undecodable_lambda_is_still_reported(tmp_path):
    layer = {"module": "keras.layers", "class_name": "Lambda", "config": {
        "name": "bad", "function": {"class_name": "__lambda__", "config": {"code": "!!notbase64", "defaults": None}}}}
    art = _one(_keras_zip(tmp_path / "bad_lambda.keras", _model_with(layer)))
    [lam] = [f for f in art.findings if f.rule_id == "MS-KERAS-001"]
    assert lam.severity is Severity.HIGH and "decode_error" in lam.evidence


# --- module / API gadgets ----------------------------------------------------------------------

GADGETS = [
    (_fn("keras.utils", "get_file"), "MS-KERAS-002", {"CVE-2025-8747"}),
    (_fn("keras.config", "enable_unsafe_deserialization"), "MS-KERAS-002", {"CVE-2025-9906"}),
    (_fn("os", "system"), "MS-KERAS-003", {"CVE-2025-1550"}),
    (_fn("builtins", "eval"), "MS-KERAS-003", {"CVE-2025-1550"}),
    ({"module": "subprocess", "class_name": "Popen", "config": {}, "registered_name": None},
     "MS-KERAS-003", {"CVE-2025-1550"}),
]


@pytest.mark.parametrize("ref,rule,cves", GADGETS)
def test_config_gadgets_in_keras_zip(tmp_path, ref, rule, cves):
    layer = {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
             "config": {"name": "d", "units": 1, "activation": ref}}
    art = _one(_keras_zip(tmp_path / "gadget.keras", _model_with(layer)))
    hits = [f for f in art.findings if f.rule_id == rule]
    assert len(hits) == 1 and hits[0].severity is Severity.CRITICAL, _ids(art)
    assert cves <= set(hits[0].cve)
    assert art.verdict is Verdict.UNSAFE


def test_get_file_with_extract_adds_archive_traversal_cve(tmp_path):
    layer = {"module": "keras.layers", "class_name": "Dense", "config": {
        "name": "d", "activation": _fn("keras.src.utils.file_utils", "get_file"),
        "origin": "http://127.0.0.1:1/evil.tar.gz", "extract": True}}
    art = _one(_keras_zip(tmp_path / "get_file.keras", _model_with(layer)))
    [hit] = [f for f in art.findings if f.rule_id == "MS-KERAS-002"]
    assert {"CVE-2025-8747", "CVE-2025-12060"} <= set(hit.cve)


def test_keras_builtin_functions_and_custom_objects_are_not_threats(tmp_path):
    layers = [
        {"module": "keras.layers", "class_name": "Dense",
         "config": {"name": "a", "activation": _fn("builtins", "relu")}},
        {"module": "my_package.layers", "class_name": "MyLayer", "registered_name": "my_package>MyLayer",
         "config": {"name": "b"}},
    ]
    config = {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": layers}}
    art = _one(_keras_zip(tmp_path / "custom.keras", config))
    assert art.verdict is Verdict.CLEAN
    assert _ids(art) == ["MS-KERAS-004"]
    assert art.properties["keras"]["custom_objects"] == ["my_package.layers.MyLayer (my_package>MyLayer)"]


def test_bare_json_config_gadget(tmp_path):
    path = tmp_path / "model.json"
    path.write_text(json.dumps(_model_with({"module": "keras.layers", "class_name": "Dense", "config": {
        "name": "d", "activation": _fn("os", "system")}})))
    art = _one(path)
    assert art.format == "keras_config" and "MS-KERAS-003" in _ids(art)


def test_torch_module_wrapper_is_flagged_and_its_pickle_scanned(built):
    art = _one(built / "torch_wrapper.keras")
    assert "MS-KERAS-005" in _ids(art)
    assert art.verdict is Verdict.UNSAFE
    assert any("config.module" in m for m in art.members), art.members


def test_malformed_config_is_inconclusive(tmp_path):
    art = _one(_keras_zip(tmp_path / "broken.keras", '{"class_name": "Sequential", "config": {'))
    assert art.verdict is Verdict.INCONCLUSIVE and "MS-KERAS-007" in _ids(art)


def test_duplicate_config_members_are_all_checked(tmp_path):
    """zipfile's lookup takes the last duplicate: the evil copy must be seen whichever comes first."""
    benign = _model_with({"module": "keras.layers", "class_name": "Dense", "config": {"name": "d"}})
    evil = _model_with({"module": "keras.layers", "class_name": "Dense", "config": {
        "name": "d", "activation": _fn("os", "system")}})
    for order in ((benign, evil), (evil, benign)):
        path = tmp_path / "dup.keras"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("metadata.json", "{}")
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for cfg in order:
                    zf.writestr("config.json", json.dumps(cfg))
        assert "MS-KERAS-003" in _ids(_one(path))


# --- HDF5 specifics ----------------------------------------------------------------------------

def _lambda_model_config() -> str:
    code = base64.b64encode(marshal.dumps((lambda x: __import__("os").system("id")).__code__)).decode()
    return json.dumps(_model_with({"module": "keras.layers", "class_name": "Lambda", "config": {
        "name": "l", "function": {"class_name": "__lambda__", "config": {"code": code}}}}))


def test_h5_with_user_block_is_found(tmp_path):
    path = tmp_path / "ub.h5"
    with h5py.File(path, "w", userblock_size=1024) as f:
        f.attrs["model_config"] = _lambda_model_config()
    art = _one(path)
    assert art.format == "hdf5" and art.properties["hdf5"]["superblock_offset"] == 1024
    assert "MS-KERAS-001" in _ids(art)


def test_h5_external_link_and_external_storage(tmp_path):
    (tmp_path / "other.h5").write_bytes(b"")
    path = tmp_path / "sub" / "links.h5"
    path.parent.mkdir()
    with h5py.File(path, "w") as f:
        f["ext"] = h5py.ExternalLink("/etc/passwd.h5", "/x")
        f.create_dataset("raw", shape=(4,), dtype="u1", external=[("/etc/hostname", 0, 4)])
    art = _one(path)
    hits = [f for f in art.findings if f.rule_id == "MS-KERAS-010"]
    assert {f.evidence["object"] for f in hits} == {"/ext", "/raw"}
    assert art.verdict is Verdict.UNSAFE


def test_truncated_h5_is_inconclusive(built, tmp_path):
    data = (built / "benign.h5").read_bytes()
    path = tmp_path / "trunc.h5"
    path.write_bytes(data[:600])
    art = _one(path)
    assert art.verdict is Verdict.INCONCLUSIVE and art.format == "hdf5"


def test_without_h5py_the_h5_is_inconclusive(built, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)  # makes `import h5py` raise ImportError
    # Analysed in this process: the worker processes were started before the patch.
    [art] = scan(str(built / "benign.h5"), workers=0).artefacts
    assert _ids(art) == ["MS-KERAS-008"] and art.verdict is Verdict.INCONCLUSIVE


# --- the flavour API over a plain zipfile adapter --------------------------------------------

class _StdlibArchive:
    def __init__(self, path: Path) -> None:
        self.zf = zipfile.ZipFile(path)

    def members(self) -> list[Member]:
        return [Member(name=i.filename, size=i.file_size, compressed_size=i.compress_size,
                       kind="dir" if i.is_dir() else "file") for i in self.zf.infolist()]

    def open(self, member: Member):
        return BytesBlob(self.zf.read(member.name), member.name)


def test_analyse_archive_over_stdlib_adapter(built):
    names = zipfile.ZipFile(built / "lambda.keras").namelist()
    assert keras_flavour.matches(names)
    assert not keras_flavour.matches(["data.pkl", "version"])
    ctx = ScanContext(artefact=Artefact(path="lambda.keras"), policy=Policy.default(), dispatcher=analyse_blob)
    keras_flavour.analyse_archive(_StdlibArchive(built / "lambda.keras"), ctx)
    assert [f.rule_id for f in ctx.artefact.findings] == ["MS-KERAS-001"]
    assert ctx.artefact.findings[0].location.member == "config.json"
    assert "model.weights.h5" in ctx.artefact.members


# --- static marshal reader -----------------------------------------------------------------------

def _outer(y):
    import os as _os  # noqa: F401 - names only

    def inner(z):
        return _os.popen(z).read() + y
    return inner


@pytest.mark.parametrize("fn", [lambda x: x + 1, lambda x, k=3: x.shape[k],
                                _outer, lambda: {"a": (1, 2.5, 3j, b"x", None, ...)}, _outer(1)])
def test_marshal_reader_matches_cpython(fn):
    info = parse_marshal_code(marshal.dumps(fn.__code__))
    assert info.names == list(fn.__code__.co_names)
    assert info.name == fn.__code__.co_name


def test_marshal_reader_sees_nested_code():
    info = parse_marshal_code(marshal.dumps(_outer.__code__))
    assert "popen" in info.all_names() and "read" in info.all_names()


def test_marshal_reader_rejects_truncated():
    data = marshal.dumps((lambda x: x.system("id")).__code__)
    for cut in (1, 5, len(data) // 2, len(data) - 1):
        with pytest.raises(MarshalError):
            parse_marshal_code(data[:cut])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.integers(min_value=0, max_value=300))
def test_marshal_reader_mutation_never_crashes(noise, at):
    data = bytearray(marshal.dumps((lambda x: __import__("os").system(x)).__code__))
    data[at % len(data):at % len(data) + len(noise)] = noise
    try:
        parse_marshal_code(bytes(data))
    except MarshalError:
        pass


# --- CLI end to end ------------------------------------------------------------------------------

def test_cli_blocks_lambda_keras(built):
    code, report = scan_json(str(built / "lambda.keras"))
    assert code == 1
    [art] = report["targets"][0]["artefacts"]
    assert art["verdict"] == "unsafe"
    assert [f["rule_id"] for f in art["findings"]] == ["MS-KERAS-001"]
    assert art["findings"][0]["kind"] == Kind.THREAT.value
