"""ONNX and TensorFlow (SavedModel / GraphDef) analysis over the bounded protobuf walker."""
from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given, settings, strategies as st
from onnx import TensorProto, helper, numpy_helper

from helpers.cli import scan_json
from modelshield.scanner.blob import BytesBlob, FileBlob
from modelshield.scanner.errors import BudgetExceeded, FormatError
from modelshield.scanner.context import ScanContext
from modelshield.scanner.dispatch import identify
from modelshield.scanner.engine import scan
from modelshield.scanner.findings import Artefact, Severity, Verdict
from modelshield.scanner.formats import onnx as onnx_format
from modelshield.scanner.formats import tensorflow as tf_format
from modelshield.scanner.policy import Policy
from modelshield.scanner.protowire import Limits, Reader
from modelshield.scanner.errors import ProtoError
from protobuf_bytes import integer as _int, length_delimited as _len, varint as _varint


def _one(path: Path):
    report = scan(str(path))
    arts = [a for a in report.artefacts if Path(a.path).name == path.name]
    assert len(arts) == 1
    return arts[0]


def _ids(art) -> list[str]:
    return sorted(f.rule_id for f in art.findings)


# --- ONNX fixtures with the real onnx library ------------------------------------------------

def _model(initializers, nodes=None, domain_opsets=()) -> onnx.ModelProto:
    nodes = nodes or [helper.make_node("Identity", ["w"], ["y"])]
    graph = helper.make_graph(nodes, "g", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=initializers)
    opsets = [helper.make_opsetid("", 17), *[helper.make_opsetid(d, 1) for d in domain_opsets]]
    return helper.make_model(graph, opset_imports=opsets, producer_name="modelshield-tests")


def _external_tensor(location: str, name: str = "w") -> TensorProto:
    t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=[4], data_location=TensorProto.EXTERNAL)
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    return t


def _save(model: onnx.ModelProto, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


@pytest.fixture
def benign_external(tmp_path) -> Path:
    """A real onnx.save_model with external data inside the model folder."""
    w = numpy_helper.from_array(np.arange(4096, dtype=np.float32), "w")
    model = _model([w])
    path = tmp_path / "m" / "model.onnx"
    path.parent.mkdir()
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="model.onnx_data", size_threshold=0)
    return path


def test_benign_onnx_with_external_data_is_clean(benign_external):
    art = _one(benign_external)
    assert art.format == "onnx" and art.verdict is Verdict.CLEAN and art.findings == []
    props = art.properties["onnx"]
    assert props["external_data"] == [{"location": "model.onnx_data", "tensors": 1}]
    assert props["producer_name"] == "modelshield-tests" and props["opset_import"]["ai.onnx"] == 17
    assert props["op_types"] == {"Identity": 1}


def test_benign_inline_onnx_is_clean(tmp_path):
    w = numpy_helper.from_array(np.ones((3, 3), dtype=np.float32), "w")
    nodes = [helper.make_node("MatMul", ["w", "w"], ["m"]), helper.make_node("Relu", ["m"], ["y"])]
    art = _one(_save(_model([w], nodes), tmp_path / "inline.onnx"))
    assert art.verdict is Verdict.CLEAN and art.findings == []


@pytest.mark.parametrize("location,rule", [("../secret.bin", "MS-ONNX-001"), ("sub/../../secret.bin", "MS-ONNX-001"),
                                           ("/etc/passwd", "MS-ONNX-001"), ("C:\\Windows\\win.ini", "MS-ONNX-001"),
                                           ("..\\secret.bin", "MS-ONNX-001")])
def test_external_data_escape(tmp_path, location, rule):
    (tmp_path / "secret.bin").write_bytes(b"S" * 16)
    art = _one(_save(_model([_external_tensor(location)]), tmp_path / "m" / "model.onnx"))
    assert _ids(art) == [rule] and art.verdict is Verdict.UNSAFE
    assert art.findings[0].severity is Severity.HIGH and "CVE-2024-27318" in art.findings[0].cve


def test_external_data_symlink_escape(tmp_path):
    (tmp_path / "secret.bin").write_bytes(b"S" * 16)
    folder = tmp_path / "m"
    folder.mkdir()
    os.symlink(tmp_path / "secret.bin", folder / "weights.bin")
    art = _one(_save(_model([_external_tensor("weights.bin")]), folder / "model.onnx"))
    assert _ids(art) == ["MS-ONNX-002"]


def test_external_data_hardlink(tmp_path):
    (tmp_path / "secret.bin").write_bytes(b"S" * 16)
    folder = tmp_path / "m"
    folder.mkdir()
    os.link(tmp_path / "secret.bin", folder / "weights.bin")
    art = _one(_save(_model([_external_tensor("weights.bin")]), folder / "model.onnx"))
    assert _ids(art) == ["MS-ONNX-003"] and art.verdict is Verdict.UNSAFE


def test_external_data_in_nested_subgraph_and_function(tmp_path):
    """Tensors inside If-branch subgraphs are loaded too (onnx _get_all_tensors)."""
    inner = helper.make_graph([helper.make_node("Identity", ["t"], ["o"])], "then", [],
                              [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)],
                              initializer=[_external_tensor("../../x.bin", "t")])
    node = helper.make_node("If", ["c"], ["y"], then_branch=inner, else_branch=inner)
    model = _model([], [node])
    art = _one(_save(model, tmp_path / "m" / "model.onnx"))
    assert _ids(art) == ["MS-ONNX-001"]


def test_missing_external_file_is_info(tmp_path):
    art = _one(_save(_model([_external_tensor("absent.bin")]), tmp_path / "m" / "model.onnx"))
    assert _ids(art) == ["MS-ONNX-006"] and art.verdict is Verdict.CLEAN


def test_malformed_external_offset_is_inconclusive(tmp_path):
    t = _external_tensor("w.bin")
    t.external_data[1].value = "-5"
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.bin").write_bytes(b"\0" * 16)
    art = _one(_save(_model([t]), tmp_path / "m" / "model.onnx"))
    assert _ids(art) == ["MS-ONNX-005"] and art.verdict is Verdict.INCONCLUSIVE


def test_custom_domain_is_info_only(tmp_path):
    nodes = [helper.make_node("Identity", ["w"], ["a"]),
             helper.make_node("EvilOp", ["a"], ["y"], domain="com.example.custom")]
    w = numpy_helper.from_array(np.ones(4, dtype=np.float32), "w")
    art = _one(_save(_model([w], nodes, ["com.example.custom"]), tmp_path / "custom.onnx"))
    assert _ids(art) == ["MS-ONNX-004"] and art.verdict is Verdict.CLEAN
    assert art.findings[0].evidence["op_types"] == ["EvilOp"]


def test_truncated_onnx_is_inconclusive(benign_external, tmp_path):
    w = numpy_helper.from_array(np.ones(1000, dtype=np.float32), "w")
    data = _model([w]).SerializeToString()
    path = tmp_path / "t.onnx"
    path.write_bytes(data[:len(data) - 300])
    art = _one(path)
    assert art.format == "onnx" and art.verdict is Verdict.INCONCLUSIVE, _ids(art)
    assert "exceeds" in art.findings[0].message or "declares" in art.findings[0].message


def test_loader_resolves_the_location_outside_the_folder(tmp_path):
    """Subprocess proof with the real onnx loader. onnx >= 1.17 refuses the read itself (the patched
    behaviour of CVE-2024-27318), naming the escape we report; older onnx reads the outside file."""
    (tmp_path / "secret.bin").write_bytes(b"SECRETSECRETSECR")
    path = _save(_model([_external_tensor("../secret.bin")]), tmp_path / "m" / "model.onnx")
    script = ("import onnx,sys\n"
              "try:\n m=onnx.load(sys.argv[1]); print('READ', m.graph.initializer[0].raw_data)\n"
              "except Exception as e: print('REFUSED', e)\n")
    out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True,
                         timeout=60).stdout
    assert "READ b'SECRETSECRETSECR'" in out or ("REFUSED" in out and "outside" in out), out
    assert _ids(_one(path)) == ["MS-ONNX-001"]


def test_large_onnx_streams_without_reading_initializers(tmp_path):
    big = numpy_helper.from_array(np.zeros(8 << 20, dtype=np.float32), "w")  # 32 MiB inline raw_data
    path = _save(_model([big]), tmp_path / "big.onnx")

    class Counting(FileBlob):
        read = 0

        def read_at(self, offset, n):
            data = super().read_at(offset, n)
            Counting.read += len(data)
            return data

    with Counting(path) as blob:
        ctx = ScanContext(artefact=Artefact(path="big.onnx", absolute_path=str(path)), policy=Policy.default())
        assert onnx_format.sniff(blob.head(65536), blob, "big.onnx")
        onnx_format.analyse(blob, ctx)
    assert ctx.artefact.findings == [] and ctx.artefact.properties["onnx"]["initializers"] == 1
    assert Counting.read < 1 << 20, Counting.read


# --- TensorFlow: exact protobuf byte builders (TensorFlow is not installed) -----------------------



def node_def(name: str, op: str, inputs=(), attrs: bytes = b"") -> bytes:
    body = _len(1, name.encode()) + _len(2, op.encode()) + b"".join(_len(3, i.encode()) for i in inputs)
    return body + attrs


def const_attr(size: int) -> bytes:
    tensor = _int(1, 1) + _len(4, b"\0" * size)  # TensorProto: dtype, tensor_content
    return _len(5, _len(1, b"value") + _len(2, _len(8, tensor)))  # attr map entry -> AttrValue.tensor


def graph_def(nodes: list[bytes], functions: list[bytes] = ()) -> bytes:
    out = b"".join(_len(1, n) for n in nodes)
    if functions:
        out += _len(2, b"".join(_len(1, f) for f in functions))
    return out + _len(4, _int(1, 1205))  # VersionDef.producer


def function_def(name: str, nodes: list[bytes]) -> bytes:
    return _len(1, _len(1, name.encode())) + b"".join(_len(3, n) for n in nodes)


def saved_model(graph: bytes, ops: list[str] = (), tags=("serve",)) -> bytes:
    op_list = b"".join(_len(1, _len(1, op.encode())) for op in ops)
    info = _len(2, op_list) + b"".join(_len(4, t.encode()) for t in tags) + _len(5, b"2.16.1")
    meta = _len(1, info) + _len(2, graph)
    return _int(1, 1) + _len(2, meta)


BENIGN_NODES = [node_def("x", "Placeholder"), node_def("w", "Const", attrs=const_attr(64)),
                node_def("y", "MatMul", ["x", "w"]), node_def("out", "Identity", ["y"])]


def test_benign_graphdef_is_clean(tmp_path):
    path = tmp_path / "frozen.pb"
    path.write_bytes(graph_def(BENIGN_NODES))
    art = _one(path)
    assert art.format == "tensorflow" and art.verdict is Verdict.CLEAN and art.findings == []
    assert art.properties["tensorflow"]["kind"] == "graph_def" and art.properties["tensorflow"]["nodes"] == 4


def test_benign_saved_model_checkpoint_ops_are_info(tmp_path):
    nodes = BENIGN_NODES + [node_def("save/SaveV2", "SaveV2"), node_def("save/RestoreV2", "RestoreV2")]
    path = tmp_path / "saved_model.pb"
    path.write_bytes(saved_model(graph_def(nodes), ops=["Const", "MatMul", "SaveV2", "RestoreV2"]))
    art = _one(path)
    assert art.verdict is Verdict.CLEAN and _ids(art) == ["MS-TF-002", "MS-TF-002"]
    assert art.properties["tensorflow"]["tags"] == ["serve"]


def test_pyfunc_in_graphdef(tmp_path):
    path = tmp_path / "evil.pb"
    path.write_bytes(graph_def(BENIGN_NODES + [node_def("cb", "PyFunc", ["x"])]))
    art = _one(path)
    [hit] = art.findings
    assert hit.rule_id == "MS-TF-001" and hit.severity is Severity.CRITICAL and hit.callable == "PyFunc"
    assert hit.evidence["node"] == "cb" and art.verdict is Verdict.UNSAFE


def test_dangerous_ops_hidden_in_function_library_of_saved_model(tmp_path):
    fn = function_def("__inference_leak_7", [node_def("rf", "ReadFile", ["path"]),
                                             node_def("wf", "WriteFile", ["p", "rf"]),
                                             node_def("lib", "LoadLibrary")])
    path = tmp_path / "saved_model.pb"
    path.write_bytes(saved_model(graph_def(BENIGN_NODES, [fn])))
    art = _one(path)
    by_op = {f.callable: f for f in art.findings}
    assert set(by_op) == {"ReadFile", "WriteFile", "LoadLibrary"}
    assert by_op["LoadLibrary"].severity is Severity.CRITICAL
    assert "__inference_leak_7" in by_op["ReadFile"].evidence["where"]


def test_op_only_in_stripped_op_list(tmp_path):
    path = tmp_path / "saved_model.pb"
    path.write_bytes(saved_model(graph_def(BENIGN_NODES), ops=["EagerPyFunc"]))
    assert [f.callable for f in _one(path).findings] == ["EagerPyFunc"]


def test_truncated_graphdef_is_inconclusive(tmp_path):
    data = graph_def(BENIGN_NODES + [node_def("cb", "PyFunc", ["x"])])
    path = tmp_path / "t.pb"
    # cut inside the last node: sniff still sees the first nodes; the walk fails precisely
    path.write_bytes(data[:len(data) - 10])
    art = _one(path)
    assert art.format == "tensorflow" and art.verdict is Verdict.INCONCLUSIVE


def test_onnx_and_tf_do_not_claim_each_other(tmp_path, benign_external):
    onnx_bytes = benign_external.read_bytes()
    assert not tf_format.sniff(onnx_bytes[:65536], BytesBlob(onnx_bytes), "x")
    sm = saved_model(graph_def(BENIGN_NODES))
    assert not onnx_format.sniff(sm, BytesBlob(sm), "x") and tf_format.sniff(sm, BytesBlob(sm), "x")


def test_random_bytes_and_other_formats_are_not_claimed():
    rng = random.Random(1234)
    samples = [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 3000))) for _ in range(300)]
    samples += [b"\x80\x04\x95" + b"\0" * 30, b'{"a": 1}', b"PK\x03\x04" + b"\0" * 40, b"GGUF" + b"\0" * 40,
                b"\n\n# hello world\n\nsome text", b"hello"]
    for data in samples:
        blob = BytesBlob(data)
        assert not onnx_format.sniff(data, blob, "x.onnx"), data[:40]
        assert not tf_format.sniff(data, blob, "x.pb"), data[:40]


# --- the wire walker itself ------------------------------------------------------------------------

def _walk_all(reader: Reader, depth: int = 0) -> int:
    count = 0
    for f in reader:
        count += 1
        if f.wire == 2 and depth < 8:
            try:
                count += _walk_all(reader.sub(f), depth + 1)
            except (ProtoError, BudgetExceeded):
                pass
    return count


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=3))
def test_walker_mutation_no_exception_no_hang(noise, at, mode):
    base = saved_model(graph_def(BENIGN_NODES + [node_def("cb", "PyFunc")]))
    data = bytearray(base)
    pos = at % len(data)
    if mode == 0:
        data[pos:pos + len(noise)] = noise
    elif mode == 1:
        data = data[:pos]
    elif mode == 2:
        data[pos:pos] = noise
    else:
        data = bytearray(noise)
    start = time.monotonic()
    blob = BytesBlob(bytes(data))
    try:
        _walk_all(Reader(blob, limits=Limits(max_fields=100_000)))
    except (ProtoError, BudgetExceeded):
        pass
    for module in (onnx_format, tf_format):
        if module.sniff(bytes(data[:65536]), blob, "m"):
            ctx = ScanContext(artefact=Artefact(path="m"), policy=Policy.default())
            try:
                module.analyse(blob, ctx)
            except (FormatError, BudgetExceeded):
                pass
    assert time.monotonic() - start < 2


def test_walker_depth_and_field_budgets():
    nested = b""
    for _ in range(200):
        nested = _len(1, nested)
    reader = Reader(BytesBlob(nested), limits=Limits(max_depth=64))
    with pytest.raises(BudgetExceeded):
        r = reader
        while True:
            r = r.sub(next(iter(r)))
    many = _int(1, 1) * 1000
    with pytest.raises(BudgetExceeded):
        list(Reader(BytesBlob(many), limits=Limits(max_fields=100)))


def test_walker_rejects_overlong_lengths_and_bad_varints():
    with pytest.raises(ProtoError):
        list(Reader(BytesBlob(_varint(1 << 3 | 2) + _varint(1 << 40))))
    with pytest.raises(ProtoError):
        list(Reader(BytesBlob(b"\x08" + b"\xff" * 11)))
    with pytest.raises(ProtoError):
        list(Reader(BytesBlob(b"\x0b\x0c")))  # group wire type


def test_engine_identifies_by_content_not_name(tmp_path, benign_external):
    data = graph_def(BENIGN_NODES)
    blob = BytesBlob(data)
    assert identify(blob, "weights.bin").NAME == "tensorflow"
    onnx_blob = BytesBlob(benign_external.read_bytes())
    assert identify(onnx_blob, "whatever.dat").NAME == "onnx"


def test_cli_blocks_pyfunc(tmp_path):
    path = tmp_path / "saved_model.pb"
    path.write_bytes(saved_model(graph_def(BENIGN_NODES + [node_def("cb", "PyFuncStateless")])))
    code, report = scan_json(str(path))
    assert code == 1
    [art] = report["targets"][0]["artefacts"]
    assert [f["rule_id"] for f in art["findings"]] == ["MS-TF-001"] and art["format"] == "tensorflow"
