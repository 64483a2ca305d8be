"""Red team: ONNX external data hidden in a local function's default attribute (FunctionProto.attribute_proto),
a place the walker did not visit before wave 2."""
from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from modelshield.scanner.engine import scan


def test_external_data_in_function_default_attribute(tmp_path):
    tensor = helper.make_tensor("w", TensorProto.FLOAT, [1], [0.0])
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../../../etc/passwd"
    default = helper.make_attribute("value", tensor)
    fn = helper.make_function("custom.fn", "F", ["x"], ["y"], [helper.make_node("Identity", ["x"], ["y"])],
                              [helper.make_opsetid("", 18)])
    fn.attribute_proto.append(default)
    graph = helper.make_graph([helper.make_node("F", ["x"], ["y"], domain="custom.fn")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, functions=[fn], opset_imports=[helper.make_opsetid("", 18),
                                                                    helper.make_opsetid("custom.fn", 1)])
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    report = scan([str(path)])
    found = {f.rule_id: f for t in report.targets for a in t.artefacts for f in a.findings}
    assert "MS-ONNX-001" in found and found["MS-ONNX-001"].evidence["data_file"] == "../../../etc/passwd"
