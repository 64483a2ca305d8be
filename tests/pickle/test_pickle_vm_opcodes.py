"""Opcode-level behaviour of the pickle VM: imports, call sites, memo, streams, nesting, budgets."""
from __future__ import annotations

import base64
import copyreg
import marshal
import pickle

import pytest
from pickle_vm_helpers import binbytes, call, glob, prog, run_vm, s

from modelshield.scanner.budgets import Budgets
from modelshield.scanner.errors import BudgetExceeded

SYSTEM = glob("os", "system")


def test_classic_reduce_reports_import_and_call_with_site_and_args():
    run = run_vm(prog(call(SYSTEM, s("id"))))
    imp, = run.by_rule("MS-PKL-001")
    site, = run.by_rule("MS-PKL-003")
    assert imp.callable == site.callable == "os.system"
    assert imp.location.offset == 2 and imp.location.position == 1 and imp.location.stream == 0
    assert site.args == ["id"] and site.evidence["opcode"] == "REDUCE"
    assert imp.evidence["group"] == "processes-os"
    assert run.verdict == "unsafe"


def test_posix_alias_is_reported_as_os():
    run = run_vm(pickle.dumps(__import__("os").system, protocol=2))
    assert run.by_rule("MS-PKL-001")[0].callable == "os.system"
    assert run.result.globals == ["posix.system"]


def test_stack_global_operands_from_memo_and_decoys():
    body = (s("builtins") + b"\x94" + s("decoy") + b"0" + s("eval") + b"\x94" + b"0"  # memo 0 builtins, 1 eval
            + b"h\x00" + b"h\x01" + b"\x93" + b"(" + s("1+1") + b"tR")
    run = run_vm(prog(body))
    assert run.result.globals == ["builtins.eval"]
    assert [f.callable for f in run.by_rule("MS-PKL-003")] == ["builtins.eval"]


def test_stack_global_non_string_operand_is_an_error_like_cpython():
    run = run_vm(prog(b"K\x01" + s("system") + b"\x93"))
    assert "MS-PKL-008" in run.ids and run.verdict == "inconclusive"


def test_stack_global_computed_operand_is_dynamic_import():
    body = call(glob("mylib", "name_of"), s("x")) + s("system") + b"\x93" + b"0" + b"N"
    run = run_vm(prog(body))
    assert "MS-PKL-013" in run.ids


def test_dotted_name_resolves_whole_chain_through_allowed_module():
    # torch.nn.modules.module.* is allowed by class entries; the chain reaches torch.load.
    run = run_vm(prog(b"\x8c\x17torch.nn.modules.module\x8c\ntorch.load\x93" + b")R"))
    assert run.by_rule("MS-PKL-001") and run.verdict == "unsafe"


def test_dunder_attribute_through_import_is_critical():
    body = glob("numpy", "__builtins__") + b"0" + b"N"
    run = run_vm(prog(body))
    f, = run.by_rule("MS-PKL-006")
    assert f.callable == "numpy.__builtins__"


def test_build_onto_module_is_shadowpickle_and_later_use_flagged():
    evil = glob("builtins", "eval")
    body = (glob("torch", "_utils") + b"}" + s("_rebuild_tensor_v2") + evil + b"s" + b"b" + b"0"
            + glob("torch._utils", "_rebuild_tensor_v2") + b"(" + s("1") + b"tR")
    run = run_vm(prog(body))
    kinds = {f.evidence.get("how") for f in run.by_rule("MS-PKL-005")}
    assert any("BUILD" in (k or "") for k in kinds)
    assert any("overwritten" in (k or "") for k in kinds)


def test_obj_then_pop_is_still_a_call():
    run = run_vm(prog(b"(" + SYSTEM + s("id") + b"o0N"))
    f, = run.by_rule("MS-PKL-003")
    assert f.evidence["opcode"] == "OBJ"


def test_inst_opcode_protocol0():
    data = b"(S'id'\nios\nsystem\n."
    run = run_vm(data)
    assert run.by_rule("MS-PKL-003")[0].evidence["opcode"] == "INST"


def test_newobj_ex_call_site():
    body = glob("subprocess", "Popen") + b"(" + s("id") + b"t}\x92"
    run = run_vm(prog(body))
    assert run.by_rule("MS-PKL-003")[0].evidence["opcode"] == "NEWOBJ_EX"


def test_python2_names_mapped_for_protocol_below_3():
    run = run_vm(prog(call(glob("__builtin__", "eval"), s("1")), proto=2))
    assert run.result.globals == ["builtins.eval"] and run.by_rule("MS-PKL-001")


def test_ext_codes_registered_and_unregistered():
    copyreg.add_extension("os", "system", 0x1234)
    try:
        run = run_vm(prog(b"\x83\x34\x12" + b"(" + s("id") + b"tR", proto=2))
        assert run.by_rule("MS-PKL-001")[0].callable == "os.system"
    finally:
        copyreg.remove_extension("os", "system", 0x1234)
    run = run_vm(prog(b"\x82\x07" + b"(" + s("id") + b"tR", proto=2))
    assert run.by_rule("MS-PKL-007") and run.verdict == "unsafe"


def test_payload_in_second_stream_is_found():
    benign = pickle.dumps({"a": 1}, protocol=2)
    run = run_vm(benign + prog(call(SYSTEM, s("id"))))
    assert len(run.result.streams) == 2
    assert run.by_rule("MS-PKL-003")[0].location.stream == 1


def test_nullifai_payload_before_broken_tail():
    data = b"\x80\x02" + call(SYSTEM, s("id")) + b"0" + b"\xff broken"
    run = run_vm(data)
    assert {"MS-PKL-003", "MS-PKL-008", "MS-PKL-009"} <= set(run.ids)
    assert run.verdict == "unsafe" and not run.result.complete


def test_truncated_benign_pickle_is_inconclusive_not_clean():
    data = pickle.dumps(list(range(100)), protocol=4)[:-20]
    run = run_vm(data)
    assert run.ids == ["MS-PKL-008"] and run.verdict == "inconclusive"


def test_trailing_junk_after_clean_stream_is_info():
    run = run_vm(pickle.dumps([1, 2], protocol=4) + b"\n\x00\x00")
    assert run.ids == ["MS-PKL-014"] and run.verdict == "clean"


def test_frame_past_end_is_error_like_cpython():
    data = b"\x80\x04\x95" + (1000).to_bytes(8, "little") + b"N."
    assert "MS-PKL-008" in run_vm(data).ids


def test_frame_does_not_hide_opcodes_after_it():
    inner = call(SYSTEM, s("id"))
    data = b"\x80\x04\x95" + (len(inner) - 3).to_bytes(8, "little") + inner + b"."
    assert run_vm(data).by_rule("MS-PKL-003")


@pytest.mark.parametrize("encode, decoder", [
    (lambda b: b, None),
    (lambda b: base64.b64encode(b).decode(), ("base64", "b64decode")),
    (lambda b: b.hex(), ("binascii", "unhexlify")),
])
def test_nested_pickle_loads_raw_base64_hex(encode, decoder):
    inner = prog(call(SYSTEM, s("id")))
    payload = encode(inner)
    arg = binbytes(payload) if isinstance(payload, bytes) else s(payload) if len(payload) < 256 else \
        b"X" + len(payload.encode()).to_bytes(4, "little") + payload.encode()
    if decoder:
        arg = call(glob(*decoder), arg)
    run = run_vm(prog(call(glob("pickle", "loads"), arg)))
    nested = [f for f in run.artefact.findings if f.location.member and "nested pickle" in f.location.member]
    assert any(f.callable == "os.system" and f.rule_id == "MS-PKL-003" for f in nested)


def test_marshal_code_object_is_summarised_statically():
    code = marshal.dumps(compile("import os; os.system('id')", "<x>", "exec"))
    body = call(glob("types", "FunctionType"), call(glob("marshal", "loads"), binbytes(code)), b"}")
    run = run_vm(prog(body))
    f, = run.by_rule("MS-PKL-012")
    assert "system" in f.args and f.location.member.startswith("<nested marshalled code")


def test_defaultdict_with_dangerous_factory():
    run = run_vm(prog(call(glob("collections", "defaultdict"), glob("builtins", "eval"))))
    assert any(f.callable == "collections.defaultdict" for f in run.by_rule("MS-PKL-003"))


def test_persistent_id_in_plain_pickle_is_info_and_untrusted():
    run = run_vm(prog(s("anything") + b"Q"))
    assert run.ids == ["MS-PKL-010"] and run.verdict == "clean"


def test_one_finding_per_rule_and_callable_with_sites_counted():
    body = b"(" + b"".join(call(glob("mylib", "Thing"), s(str(i))) for i in range(5)) + b"l"
    run = run_vm(prog(body))
    calls = run.by_rule("MS-PKL-004")
    assert len(calls) == 1 and calls[0].occurrences == 5 and len(calls[0].sites) == 4


def test_allowlisted_state_dict_like_pickle_has_no_findings():
    body = call(glob("collections", "OrderedDict")) + b"0" + glob("torch._utils", "_rebuild_tensor_v2") + b"0N"
    assert run_vm(prog(body)).ids == []


def test_opcode_budget():
    data = prog(b"N0" * 1000 + b"N")
    with pytest.raises(BudgetExceeded):
        run_vm(data, budgets=Budgets(max_opcodes=100))


def test_stack_depth_budget_on_deep_marks():
    data = b"\x80\x04" + b"(" * 5000
    with pytest.raises(BudgetExceeded):
        run_vm(data, budgets=Budgets(max_stack_depth=1000))


def test_nested_depth_budget():
    inner = prog(call(SYSTEM, s("id")))
    for _ in range(5):
        inner = prog(call(glob("pickle", "loads"), binbytes(inner)))
    with pytest.raises(BudgetExceeded):
        run_vm(inner)
