"""Red team: TF-Keras SavedModels carry Keras 2 layer configs (Lambda bytecode) outside the graph:
`keras_metadata.pb` and the object graph's SavedUserObject metadata. Both were not parsed before."""
from __future__ import annotations

import base64
import json
import marshal
from pathlib import Path

from modelshield.scanner.engine import scan
from modelshield.scanner.findings import Severity
from protobuf_bytes import integer as _int, length_delimited as _len




def _lambda_layer(code) -> dict:
    payload = base64.b64encode(marshal.dumps(code)).decode()
    return {"class_name": "Lambda", "name": "lam", "trainable": True, "expects_training_arg": False,
            "config": {"name": "lam", "function": [payload, None, None], "function_type": "lambda",
                       "module": "__main__", "output_shape": None, "output_shape_type": "raw"}}


EVIL = (lambda x: __import__("os").system("touch /tmp/pwned") or x).__code__
DENSE = {"class_name": "Dense", "name": "dense", "config": {"name": "dense", "units": 1, "activation": "relu"}}


def _keras_metadata(layers: list[dict]) -> bytes:
    out = b""
    for i, layer in enumerate(layers):
        node = _int(2, i + 1) + _len(3, f"root.layer-{i}".encode()) + _len(4, b"_tf_keras_layer") + \
            _len(5, json.dumps(layer).encode())
        out += _len(1, node)
    return out


def _findings(path: Path):
    report = scan([str(path)])
    return [(a, f) for t in report.targets for a in t.artefacts for f in a.findings]


def test_keras_metadata_lambda_is_critical(tmp_path):
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "keras_metadata.pb").write_bytes(_keras_metadata([DENSE, _lambda_layer(EVIL)]))
    hits = [(a, f) for a, f in _findings(folder) if f.rule_id == "MS-KERAS-001"]
    assert hits and hits[0][1].severity is Severity.CRITICAL
    assert hits[0][0].properties["tensorflow"]["kind"] == "keras_metadata"
    assert "system" in hits[0][1].evidence["names"]


def test_benign_keras_metadata_is_clean(tmp_path):
    path = tmp_path / "keras_metadata.pb"
    path.write_bytes(_keras_metadata([DENSE, {"class_name": "Sequential", "config": {"layers": [DENSE]}}]))
    found = _findings(path)
    assert [f for _, f in found if f.severity > Severity.INFO] == []
    assert found == [] or all(f.kind.name != "INCONCLUSIVE" for _, f in found)
    report = scan([str(path)])
    props = report.targets[0].artefacts[0].properties["tensorflow"]
    assert props["keras_objects"] == 2 and props["keras_layer_classes"]["Dense"] == 2


def test_object_graph_user_object_metadata(tmp_path):
    """saved_model.pb without keras_metadata.pb: TF-Keras falls back to SavedUserObject.metadata."""
    node = _len(1, b"x") + _len(2, b"Const")
    graph_def = _len(1, node)
    user = _len(1, b"_tf_keras_layer") + _len(3, json.dumps(_lambda_layer(EVIL)).encode())
    object_graph = _len(1, b"") + _len(1, _len(4, user))
    meta_graph = _len(1, _len(4, b"serve")) + _len(2, graph_def) + _len(7, object_graph)
    path = tmp_path / "saved_model.pb"
    path.write_bytes(_int(1, 1) + _len(2, meta_graph))
    hits = [f for _, f in _findings(path) if f.rule_id == "MS-KERAS-001"]
    assert hits and hits[0].severity is Severity.CRITICAL


def test_truncated_keras_metadata_is_inconclusive(tmp_path):
    data = _keras_metadata([_lambda_layer(EVIL)])
    path = tmp_path / "keras_metadata.pb"
    path.write_bytes(data[: len(data) // 2])
    report = scan([str(path)])
    artefact = report.targets[0].artefacts[0]
    assert artefact.verdict.name != "CLEAN", [(f.rule_id, f.evidence) for f in artefact.findings]
