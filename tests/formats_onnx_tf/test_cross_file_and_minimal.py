"""ONNX external data under any file name (a repo-level view: the model says which files are raw
tensor bytes) and minimal TensorFlow SavedModels (a SavedModel of any size is one)."""
from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from protobuf_bytes import integer as _int, length_delimited as _len

from modelshield import scan
from modelshield.scanner.findings import Severity


def _onnx_with_external(folder: Path, location: str) -> Path:
    """onnx.save_model writes the tensor bytes to `location` (any name) next to the model."""
    w = numpy_helper.from_array(np.arange(1024, dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "g", [],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=location, size_threshold=0)
    loaded = onnx.load(str(path))  # the real loader reads the data back from that file
    assert numpy_helper.to_array(loaded.graph.initializer[0])[5] == 5.0
    return path


@pytest.mark.parametrize("location", ["weights.bin", "model.onnx_data", "pytorch_model.bin", "tensors.pt"])
def test_external_data_under_any_name_is_inventoried(tmp_path, location):
    _onnx_with_external(tmp_path / "repo", location)
    report = scan(str(tmp_path / "repo"))
    arts = {a.path: a for a in report.targets[0].artefacts}
    data = arts[location]
    assert report.verdict.value == "clean", [(a.path, a.findings) for a in arts.values()]
    assert data.format == "onnx-external-data" and [f.rule_id for f in data.findings] == ["MS-ONNX-007"]
    assert data.properties["onnx_external_data"] == {"models": ["model.onnx"], "tensors": 1}


def test_external_data_file_alone_is_not_claimed(tmp_path):
    """Without its model the file is not ONNX data: it is judged by what the loaders its name
    suggests do with it (torch.load refuses raw bytes at offset 0: inventoried, saying so; issue 20
    class 3); under a name no modelled loader opens it stays inconclusive."""
    path = _onnx_with_external(tmp_path / "repo", "weights.bin")
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(path.parent / "weights.bin", alone / "weights.bin")
    [art] = scan(str(alone)).artefacts
    assert art.format != "onnx-external-data" and [f.rule_id for f in art.findings] == ["MS-PKL-016"]
    shutil.copy(path.parent / "weights.bin", alone / "weights.tflite")
    assert scan(str(alone / "weights.tflite")).verdict.value == "inconclusive"


def test_claimed_data_file_that_is_a_pickle_stays_a_pickle(tmp_path):
    """A file the model names as tensor bytes that is also a pickle at offset 0: torch.load or
    pickle.load would run it, so its pickle analysis stands."""
    _onnx_with_external(tmp_path / "repo", "weights.bin")
    (tmp_path / "repo" / "weights.bin").write_bytes(pickle.dumps(shutil.rmtree, protocol=2))
    report = scan(str(tmp_path / "repo"))
    data = next(a for a in report.targets[0].artefacts if a.path == "weights.bin")
    assert data.format != "onnx-external-data" and report.verdict.value == "unsafe"
    assert data.properties["onnx_external_data"]["models"] == ["model.onnx"]


# --- TensorFlow SavedModel, exact protobuf bytes (TensorFlow is not installed) ------------------

def _const(name: str = "c") -> bytes:
    tensor = _int(1, 1) + _len(2, b"") + _len(5, b"\x00\x00\x80\x3f")
    attrs = _len(5, _len(1, b"dtype") + _len(2, _int(6, 1))) + _len(5, _len(1, b"value") + _len(2, _len(8, tensor)))
    return (_len(1, name.encode()) if name else b"") + _len(2, b"Const") + attrs


def _saved_model(node: bytes, schema: bool, info: bool, extra_nodes: bytes = b"") -> bytes:
    graph = _len(1, node) + extra_nodes + _len(4, _int(1, 1205))
    meta = (_len(1, _len(4, b"serve") + _len(5, b"2.16.1")) if info else b"") + _len(2, graph)
    return (_int(1, 1) if schema else b"") + _len(2, meta)


@pytest.mark.parametrize("schema", [True, False])
@pytest.mark.parametrize("info", [True, False])
@pytest.mark.parametrize("name", ["c", ""])
def test_minimal_saved_model_with_one_const_is_a_clean_saved_model(tmp_path, schema, info, name):
    path = tmp_path / "saved_model.pb"
    path.write_bytes(_saved_model(_const(name), schema, info))
    report = scan(str(path))
    [art] = report.targets[0].artefacts
    assert art.format == "tensorflow" and report.verdict.value == "clean", art.findings
    assert art.properties["tensorflow"]["kind"] == "saved_model" and "Const" in art.properties["tensorflow"]["op_types"]


def test_schemaless_saved_model_still_reports_dangerous_ops(tmp_path):
    path = tmp_path / "saved_model.pb"
    pyfunc = _len(1, _len(1, b"cb") + _len(2, b"PyFunc"))
    path.write_bytes(_saved_model(_const(), schema=False, info=True, extra_nodes=pyfunc))
    report = scan(str(path))
    assert any(f.callable == "PyFunc" and f.severity >= Severity.HIGH for _, _, f in report.all_findings())


def test_large_saved_model_is_a_saved_model(tmp_path):
    nodes = b"".join(_len(1, _const(f"c{i}")) for i in range(5000))
    path = tmp_path / "saved_model.pb"
    path.write_bytes(_saved_model(_const(), schema=True, info=True, extra_nodes=nodes))
    [art] = scan(str(path)).targets[0].artefacts
    assert art.format == "tensorflow" and art.properties["tensorflow"]["nodes"] == 5001
