"""Bound methods pickle as getattr(cls, name): allowed when cls.name is itself an exact allow entry."""
from __future__ import annotations

import datetime as dt
import pickle
import subprocess
import sys
import zoneinfo

import pytest

from modelshield import Severity, Verdict, scan

PROTOCOLS = range(2, pickle.HIGHEST_PROTOCOL + 1)


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_tz_aware_datetime_with_zoneinfo_is_clean(tmp_path, proto):
    value = {"when": dt.datetime(2026, 11, 25, 4, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))}
    path = tmp_path / "ts.pkl"
    path.write_bytes(pickle.dumps(value, protocol=proto))
    assert b"getattr" in path.read_bytes()  # how CPython pickles the bound classmethod
    report = scan(str(path))
    assert report.verdict is Verdict.CLEAN, [f.message for _, _, f in report.all_findings()]


def _getattr_pickle(owner_module: bytes, owner: bytes, attr: bytes, call_args: bytes = b"(S'true'\ntR") -> bytes:
    """getattr(owner_module.owner, attr)(...) in protocol 0."""
    return (b"cbuiltins\ngetattr\n(c" + owner_module + b"\n" + owner + b"\nS'" + attr + b"'\ntR" + call_args + b".")


@pytest.mark.parametrize("owner_module, owner, attr", [
    (b"os", b"path", b"join"),                     # owner not allowed
    (b"collections", b"OrderedDict", b"fromkeys"),  # allowed owner, method not an exact allow entry
    (b"zoneinfo", b"ZoneInfo", b"__init_subclass__"),  # dunder
    (b"builtins", b"dict", b"__class__"),          # dunder walk
])
def test_other_getattr_uses_stay_critical(tmp_path, owner_module, owner, attr):
    path = tmp_path / "g.pkl"
    path.write_bytes(_getattr_pickle(owner_module, owner, attr))
    report = scan(str(path))
    findings = [f for _, _, f in report.all_findings()]
    assert report.verdict is Verdict.UNSAFE
    assert any(f.rule_id == "MS-PKL-001" and f.callable == "builtins.getattr" and f.severity is Severity.CRITICAL
               for f in findings), [(f.rule_id, f.callable) for f in findings]


def test_unused_getattr_import_is_still_reported(tmp_path):
    path = tmp_path / "g.pkl"
    path.write_bytes(b"cbuiltins\ngetattr\n.")
    assert {f.rule_id for _, _, f in scan(str(path)).all_findings()} >= {"MS-PKL-001"}


def test_safe_lookup_then_unsafe_use_of_the_same_getattr(tmp_path):
    # getattr memoized: first a bound-method lookup that is allowed, then getattr(os, 'system')('true')
    data = (b"cbuiltins\ngetattr\np0\n(czoneinfo\nZoneInfo\nS'_unpickle'\ntR0"
            b"g0\n(cos\npath\nS'join'\ntR(S'x'\ntR.")
    path = tmp_path / "g.pkl"
    path.write_bytes(data)
    proc = subprocess.run([sys.executable, "-c", "import pickle,sys; pickle.loads(open(sys.argv[1],'rb').read())",
                           str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr  # a valid pickle the loader runs to the end
    ids = {(f.rule_id, f.callable) for _, _, f in scan(str(path)).all_findings()}
    assert ("MS-PKL-001", "builtins.getattr") in ids


def test_distributed_checkpoint_metadata_is_clean_but_rpc_is_not(tmp_path):
    import torch
    import torch.distributed.checkpoint as dcp

    dcp.save({"w": torch.zeros(3)}, checkpoint_id=str(tmp_path / "ckpt"))
    assert scan(str(tmp_path / "ckpt" / ".metadata")).verdict is Verdict.CLEAN
    rpc = tmp_path / "rpc.pkl"
    rpc.write_bytes(b"ctorch.distributed.rpc\nrpc_sync\n(S'w'\ncos\nsystem\n(S'true'\nttR.")
    ids = {(f.rule_id, f.callable) for _, _, f in scan(str(rpc)).all_findings()}
    assert ("MS-PKL-001", "torch.distributed.rpc.rpc_sync") in ids
