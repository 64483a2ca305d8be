"""The VM's two execution paths and its bounded memory (issue 17).

- The fast loop (opcodes run inline from the read window) must give exactly what the reference
  path (every opcode through the opcode table) gives: findings with their offsets, positions and
  evidence, stream spans, imports, calls, values, errors and budgets. Both run with a tiny read
  window, and the fast loop also with chunks of a few bytes, so that window and chunk ends,
  frames and hand-overs happen everywhere.
- The compact memo (past its exact region) and bounded containers may only add caution: on the
  malicious and benign corpora, squeezed to an exact region of two entries and containers of two
  items, every threat is still found and nothing becomes cleaner.
- Memo entries past the exact region are read back exactly (names for STACK_GLOBAL), and peak
  memory does not grow with the number of memoised objects.
"""
from __future__ import annotations

import collections
import contextlib
import json
import pickle
import struct
import sys
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pickle_vm_helpers import binbytes, call, glob, prog, run_vm, s

from modelshield.scanner.blob import FileBlob
from modelshield.scanner.budgets import Budgets
from modelshield.scanner.errors import BudgetExceeded
from modelshield.scanner.context import ScanContext
from modelshield.scanner.dispatch import analyse_blob
from modelshield.scanner.findings import Artefact, Kind
from modelshield.scanner.policy import Policy
from modelshield.scanner.analysis.picklevm import fastloop
from modelshield.scanner.analysis.picklevm import memo as memo_module
from modelshield.scanner.analysis.picklevm import values as V
from modelshield.scanner.analysis.picklevm.machine import Machine
from modelshield.scanner.analysis.picklevm.opcodes import Reader
from helpers.mutations import mutations  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "corpus"))
sys.path.insert(0, str(ROOT / "tests" / "redteam"))


@contextlib.contextmanager
def vm(fast: bool = True, window: int | None = None, exact: int | None = None, keep: int | None = None,
       chunk: int | None = None):
    """Run the VM with the fast loop on/off, a read window, an exact memo region, a container size, and
    the fast loop's chunk size (a few bytes: it ends, and starts again, inside every kind of opcode)."""
    saved = Machine.FAST, Reader.WINDOW, memo_module.EXACT_ENTRIES, V.KEEP, fastloop.CHUNK
    Machine.FAST = fast
    Reader.WINDOW = window or saved[1]
    memo_module.EXACT_ENTRIES = saved[2] if exact is None else exact
    V.KEEP = saved[3] if keep is None else keep
    fastloop.CHUNK = chunk or saved[4]
    try:
        yield
    finally:
        Machine.FAST, Reader.WINDOW, memo_module.EXACT_ENTRIES, V.KEEP, fastloop.CHUNK = saved


def outcome(data: bytes, flavour: str = "plain", budgets: Budgets | None = None) -> object:
    """Everything observable of one VM run, as comparable data."""
    try:
        run = run_vm(data, flavour, budgets=budgets or Budgets(max_opcodes=20_000, max_stack_depth=300))
    except BudgetExceeded as exc:
        return ("budget", exc.budget)
    r = run.result
    findings = [(f.rule_id, f.callable, f.args, f.location.offset, f.location.position, f.location.stream,
                 json.dumps(f.evidence, sort_keys=True, default=str)) for f in run.artefact.findings]
    return (findings, r.end, r.streams, r.stream_globals, r.stream_calls, r.complete, r.builds,
            json.dumps(r.values, default=str), json.dumps(r.persistent_ids, default=str), r.frame_straddle)


def both_paths(data: bytes, flavour: str = "plain", budgets: Budgets | None = None) -> None:
    with vm(fast=False, window=48):
        reference = outcome(data, flavour, budgets)
    with vm(fast=True, window=48):
        fast = outcome(data, flavour, budgets)
    with vm(fast=True):
        fast_wide = outcome(data, flavour, budgets)
    with vm(fast=True, chunk=5):
        fast_chunks = outcome(data, flavour, budgets)
    assert fast == reference
    assert fast_wide == reference
    assert fast_chunks == reference
    # and with the memo compact past 2 entries and containers of 3 items (the fast loop writes
    # compact memo codes itself)
    with vm(fast=False, window=48, exact=2, keep=3):
        reference = outcome(data, flavour, budgets)
    with vm(fast=True, window=48, exact=2, keep=3):
        assert outcome(data, flavour, budgets) == reference
    with vm(fast=True, exact=2, keep=3, chunk=11):
        assert outcome(data, flavour, budgets) == reference


def _framed(data: bytes) -> bytes:
    """A protocol-4 pickle whose frames are small (the fast loop stops at every frame end)."""
    import pickletools

    ops = list(pickletools.genops(data))
    out, frame = [data[:2]], b""
    body_start = ops[1][2] if ops[0][0].name == "PROTO" else 0
    pos = [p for _, _, p in ops] + [len(data)]
    for i, (op, _, p) in enumerate(ops):
        if p < body_start or op.name == "FRAME":
            continue
        frame += data[p:pos[i + 1]]
        if len(frame) > 24 or op.name == "STOP":
            out.append(b"\x95" + struct.pack("<Q", len(frame)) + frame)
            frame = b""
    return b"".join(out)


SEEDS = [
    pickle.dumps({"a": [1, 2.5, "x", b"y", None, True, 300, 70000, -5], "od": collections.OrderedDict(k=(1, 2)),
                  "s": {1, 2}, "f": frozenset({3}), "t": (1,), "t3": (1, 2, 3), "big": "é" * 300,
                  "bb": b"\0" * 300, "ba": bytearray(b"xy"), "l": list(range(70))}, protocol=p)
    for p in range(6)
] + [
    prog(call(glob("os", "system"), s("id"))),
    prog(s("os") + b"\x94" + s("system") + b"\x94\x93)R"),
    prog(s("builtins") + b"\x94" + s("eval") + b"\x94\x93" + b"h\x00h\x01\x93" + s("1") + b"\x85R"),
    prog(glob("collections", "OrderedDict") + b")R" + b"}(" + s("a") + b"K\x01ub"),
    prog(glob("pickle", "loads") + binbytes(pickle.dumps(eval, protocol=2)) + b"\x85R"),
    prog(b"(" + b"K\x01" * 40 + b"t"),
    prog(b"}" + b"(" + (s("k") + b"K\x01") * 40 + b"u"),
    prog(b"]" + b"(" + b"K\x01" * 80 + b"e" + b"K\x02a"),
    b"\x80\x02c__builtin__\nset\nq\x00]q\x01(K\x01K\x02e\x85q\x02Rq\x03.",
    _framed(pickle.dumps([{"id": i, "name": f"n{i}", "v": i * 0.5} for i in range(30)], protocol=4)),
    _framed(pickle.dumps([collections.OrderedDict(a=i) for i in range(10)], protocol=4)),
] + [
    # a memo GET (a dict key) and each push the fast loop runs with it, shared strings read back later
    # (from the compact memo, when its exact region is squeezed)
    pickle.dumps([{"k": v, "j": v} for v in (0, 300, 7, 70000, -5, 1.5, True, False, None, (), "s", b"b", "é",
                                              "x" * 300)] + [["s", "k", "é"]], protocol=p)
    for p in range(1, 6)
] + [
    # more than 256 memo entries (LONG_BINPUT / LONG_BINGET in protocols 1-3), read back in another order
    pickle.dumps([names := [f"n{i}" for i in range(270)], [(n,) for n in names[::-3]]], protocol=p)
    for p in range(1, 4)
] + [
    # every inline opcode that pops, with 0-3 items between a MARK and it (underflow through the fence)
    prog(glob("collections", "OrderedDict") + b")R]}" + b"K\x01" * 3 + b"(" + b"K\x02" * n + op + b"N0" * 8)
    for op in (b"\x85", b"\x86", b"\x87", b"t", b"a", b"s", b"e", b"u", b"R", b"\x81", b"b", b"\x94", b"q\x00")
    for n in range(4)
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations(SEEDS, 0, 5), st.sampled_from(["plain", "joblib", "torch-legacy"]))
def test_fast_loop_gives_what_the_reference_path_gives(data, flavour):
    both_paths(data, flavour)


# Real pickles of random values: every protocol, shared references (memo GETs), nesting, objects
# of allowed classes (REDUCE/NEWOBJ/BUILD run inline) and of denied ones.
_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False),
                  st.text(max_size=12), st.binary(max_size=12), st.sampled_from(["id", "name", "x" * 300]))
_value = st.recursive(_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=6), st.tuples(inner), st.tuples(inner, inner), st.tuples(inner, inner, inner),
    st.lists(inner, max_size=5).map(tuple), st.dictionaries(st.text(max_size=4), inner, max_size=5),
    st.frozensets(st.integers(0, 9), max_size=3), st.sets(st.text(max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=4), inner, max_size=3).map(lambda d: collections.OrderedDict(d)),
    inner.map(lambda x: [x, x]),  # the same object twice: memo GET
), max_leaves=30)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_value, st.integers(0, 5), st.integers(0, 2))
def test_fast_loop_matches_on_real_pickles_of_random_values(value, protocol, cut):
    data = pickle.dumps(value, protocol=protocol)
    both_paths(data)
    if cut:  # and truncated somewhere: the error at the same opcode, with the same findings
        both_paths(data[:len(data) * cut // 3])


# Random programs over the opcodes the fast loop runs inline, mixed with imports and calls of
# allowed and denied callables: stack underflows, bad MARKs, memo misses, wrong targets.
_TOKENS = [b"(", b")", b"N", b"\x88", b"\x89", b"K\x07", b"M\x01\x02", b"J\xff\xff\xff\xff", b"G" + b"\0" * 8,
           b"C\x02ab", s("k"), s("os"), s("system"), b"\x94", b"h\x00", b"h\x01", b"h\x05", b"j\x02\0\0\0",
           b"q\x03", b"r\x04\0\0\0", b"]", b"}", b"\x8f", b"\x85", b"\x86", b"\x87", b"t", b"a", b"e", b"s", b"u",
           b"R", b"\x81", b"b", b"\x93", b"0", glob("collections", "OrderedDict"), glob("builtins", "set"),
           glob("os", "system"), glob("datetime", "timedelta")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_TOKENS), max_size=40), st.sampled_from(["plain", "torch-legacy"]))
def test_fast_loop_matches_on_random_programs(tokens, flavour):
    both_paths(prog(b"".join(tokens)), flavour)
    both_paths(prog(b"".join(tokens)), flavour, budgets=Budgets(max_opcodes=12, max_memo=2, max_stack_depth=9))


@pytest.mark.parametrize("index", range(len(SEEDS)))
def test_fast_loop_matches_on_every_seed_and_budget(index):
    data = SEEDS[index]
    both_paths(data)
    for budgets in (Budgets(max_opcodes=7), Budgets(max_stack_depth=5), Budgets(max_memo=3)):
        both_paths(data, budgets=budgets)


def _corpus_files(tmp_path_factory) -> list[Path]:
    from corpus_helpers import attack_dir, benign_dir

    files = sorted(p for p in attack_dir(tmp_path_factory).rglob("*") if p.is_file())
    files += sorted(p for p in benign_dir(tmp_path_factory).rglob("*") if p.is_file())
    return files


@pytest.fixture(scope="module")
def corpus_and_redteam(tmp_path_factory) -> list[Path]:
    from redteam_attacks import ATTACKS

    files = _corpus_files(tmp_path_factory)
    out = tmp_path_factory.mktemp("redteam_paths")
    for a in ATTACKS:
        (out / a.file).write_bytes(a.build())
        files.append(out / a.file)
    return files


def _scan(path: Path) -> Artefact:
    art = Artefact(path=path.name)
    ctx = ScanContext(artefact=art, policy=Policy.default(), dispatcher=analyse_blob)
    with FileBlob(path) as blob:
        try:
            analyse_blob(blob, ctx, path.name)
        except BudgetExceeded as exc:
            art.findings.append(type("B", (), {"rule_id": "budget", "callable": exc.budget, "kind": Kind.INCONCLUSIVE,
                                               "location": None, "evidence": {}})())
    return art


def _summary(art: Artefact) -> list[tuple]:
    return [(f.rule_id, f.callable, getattr(f, "args", None), getattr(f.location, "offset", None),
             json.dumps(f.evidence, sort_keys=True, default=str)) for f in art.findings]


def test_fast_loop_matches_on_the_corpora(corpus_and_redteam):
    mismatches = []
    for path in corpus_and_redteam:
        with vm(fast=False, window=64):
            reference = _summary(_scan(path))
        with vm(fast=True, window=64):
            fast = _summary(_scan(path))
        with vm(fast=True, chunk=7):
            chunked = _summary(_scan(path))
        if fast != reference or chunked != reference:
            mismatches.append((path.name, reference, fast, chunked))
    assert not mismatches, mismatches[:3]


SEVERITY = {"clean": 0, "waived": 0, "inconclusive": 1, "suspicious": 2, "unsafe": 3}


def test_compaction_only_adds_caution(corpus_and_redteam):
    """An exact memo region of 2 entries and containers of 2 items: no threat lost, nothing cleaner."""
    lost = []
    for path in corpus_and_redteam:
        exact = _scan(path)
        with vm(exact=2, keep=2):
            squeezed = _scan(path)
        threats = {(f.rule_id, f.callable) for f in exact.findings if f.kind == Kind.THREAT}
        kept = {(f.rule_id, f.callable) for f in squeezed.findings if f.kind == Kind.THREAT}
        if not threats <= kept or SEVERITY[squeezed.verdict.value] < SEVERITY[exact.verdict.value]:
            lost.append((path.name, exact.verdict.value, squeezed.verdict.value, threats - kept))
    assert not lost, lost


def _padded(tail: bytes, pad: int = 20) -> bytes:
    """`pad` memoised strings first, so that with a small exact region the payload's strings land in
    the compact part of the memo (and come back through LONG_BINGET)."""
    body = b"".join(s(f"pad{i}") + b"\x94" + b"0" for i in range(pad))
    return prog(body + tail)


def test_names_past_the_exact_region_are_read_back_exactly():
    payload = _padded(s("os") + b"\x94" + s("system") + b"\x94" + b"0" * 2 +
                      b"j" + struct.pack("<I", 20) + b"j" + struct.pack("<I", 21) + b"\x93" + s("id") + b"\x85R")
    for exact in (4, memo_module.EXACT_ENTRIES):
        with vm(exact=exact):
            run = run_vm(payload)
        assert {f.callable for f in run.by_rule("MS-PKL-001")} == {"os.system"}
        assert run.by_rule("MS-PKL-003")[0].args == ["id"]
    # protocol 0: text strings under PUT/GET decimal indices
    text = b"S'os'\np0\n0S'system'\np1\n0g0\ng1\n\x93(S'id'\ntR."
    with vm(exact=1):
        run = run_vm(text)
    assert {f.callable for f in run.by_rule("MS-PKL-001")} == {"os.system"}


def test_compact_placeholders_keep_the_loader_outcome():
    """A list past the exact region handed to REDUCE gives what the kept list gives (any iterable is
    an argument list for pickle._Unpickler); an int there still fails as in every unpickler."""
    for pushed, error in ((b"]", False), (b"K\x05", True)):
        data = _padded(pushed + b"\x94" + b"0" + glob("builtins", "print") + b"j" + struct.pack("<I", 20) + b"R.",
                       pad=20)
        with vm(exact=4):
            squeezed = run_vm(data)
        exact = run_vm(data)
        assert [(f.rule_id, f.callable) for f in squeezed.artefact.findings] == \
            [(f.rule_id, f.callable) for f in exact.artefact.findings]
        reasons = [f.evidence["reason"] for f in squeezed.by_rule("MS-PKL-008")]
        assert reasons == (["argument list must be a tuple"] if error else []), reasons


def _rows(n: int) -> bytes:
    """A list of `n` memoised dicts, each APPENDed at once (the stack never holds more than one)."""
    out = [b"]\x94"]
    for i in range(n):
        out.append(b"}\x94(" + s("id") + b"J" + struct.pack("<i", i) + s("name") + s(f"user{i:07d}") + b"\x94"
                   + s("score") + b"G" + struct.pack(">d", i * 0.5) + b"ua")
    return prog(b"".join(out))


def _peak(data: bytes) -> int:
    run_vm(data[:40] + b".")  # warm: tables, policy and caches are loaded before measuring
    tracemalloc.start()
    try:
        run_vm(data)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_number_of_objects():
    small, large = _rows(400), _rows(3_200)
    with vm(exact=100, window=4096):  # the read window (1 MiB by default) would hold the whole input
        peak_small, peak_large = _peak(small), _peak(large)
        # 8x the objects: the compact memo adds 8 bytes per entry (5.6k more entries), nothing else grows
        assert peak_large < peak_small + 100_000, (peak_small, peak_large)
    with vm(exact=1 << 30, keep=1 << 30, window=4096):  # every value kept (the VM before issue 17), for contrast
        assert _peak(large) > 4 * peak_large


def test_compact_memo_codes_fit_the_data():
    """Compact entries take 4 bytes while every offset fits, 8 past 2 GiB (offsets there stay exact)."""
    for size, width in ((1000, 4), (5 << 30, 8)):
        memo = memo_module.Memo(exact=0, reread=lambda src: ("read back", src), size=size)
        memo.put(0, "x", src=size - 2)
        memo.put(1, V.PDict())
        assert memo.tail.itemsize == width
        assert memo.get(0) == ("read back", size - 2)
        assert memo.get(1) is V.COMPACT_DICT


def test_strings_past_the_exact_region_are_read_back_once_and_exactly():
    """Dict keys memoised past the exact region are fetched by every later record: each GET gives the
    string the exact memo gives (read back from the file once, then kept in a bounded cache)."""
    keys = [f"key{i}" for i in range(40)]
    data = pickle.dumps([{k: i for k in keys[i % 7::7]} for i in range(60)] + [keys], protocol=4)
    exact = run_vm(data).result.values
    with vm(exact=3):
        squeezed = run_vm(data)
    assert squeezed.result.values == exact
    saved = memo_module.REREAD_CACHE
    memo_module.REREAD_CACHE = 2  # (cleared again and again: the same values)
    try:
        with vm(exact=3):
            assert run_vm(data).result.values == exact
    finally:
        memo_module.REREAD_CACHE = saved
