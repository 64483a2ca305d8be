"""Helpers for the pickle-engine tests: run the VM on bytes, and CPython's own Unpickler inertly."""
from __future__ import annotations

import io
import pickle
import struct
from dataclasses import dataclass, field

from modelshield.scanner.blob import BytesBlob
from modelshield.scanner.context import ScanContext
from modelshield.scanner.dispatch import analyse_blob
from modelshield.scanner.findings import Artefact
from modelshield.scanner.analysis.picklevm import PickleResult, analyse_pickle
from modelshield.scanner.policy import Policy


@dataclass
class Run:
    result: PickleResult
    artefact: Artefact

    @property
    def ids(self) -> list[str]:
        return [f.rule_id for f in self.artefact.findings]

    def by_rule(self, rule_id: str):
        return [f for f in self.artefact.findings if f.rule_id == rule_id]

    @property
    def verdict(self) -> str:
        return self.artefact.verdict.value


def run_vm(data: bytes, flavour: str = "plain", policy: Policy | None = None, **kw) -> Run:
    """analyse_pickle over `data` with a fresh context (budget exceptions propagate)."""
    art = Artefact(path="t.pkl")
    ctx = ScanContext(artefact=art, policy=policy or Policy.default(), dispatcher=analyse_blob, **kw)
    return Run(analyse_pickle(BytesBlob(data), ctx, flavour=flavour), art)


# ------------------------------------------------------------------ a tiny assembler
def s(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def binbytes(data: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(data)) + data


def call(fn: bytes, *args: bytes) -> bytes:
    """fn(*args) with MARK ... TUPLE REDUCE."""
    return fn + b"(" + b"".join(args) + b"tR"


def prog(body: bytes, proto: int = 4) -> bytes:
    return b"\x80" + bytes([proto]) + body + b"."


# ------------------------------------------------------------------ the inert CPython oracle
@dataclass
class OracleStream:
    globals: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    error: str | None = None


class _Meta(type):
    def __call__(cls, *args, **kwargs):  # noqa: N805 - metaclass
        cls._log.calls.append(cls._name)
        inst = object.__new__(cls)
        return inst


def _stub_class(name: str, log: OracleStream) -> type:
    def __new__(cls, *args, **kwargs):  # NEWOBJ, NEWOBJ_EX, OBJ/INST without args
        log.calls.append(name)
        return object.__new__(cls)

    def __call__(self, *args, **kwargs):  # a call result called again
        log.calls.append("?")
        return object.__new__(_stub_class("?", log))

    def noop(*args, **kwargs):
        return None

    ns = {"__new__": __new__, "__call__": __call__, "__setstate__": noop, "append": noop, "extend": noop,
          "__setitem__": noop, "add": noop, "_log": log, "_name": name, "__reduce__": None}
    return _Meta(name.rsplit(".", 1)[-1] or "stub", (), ns)


class InertUnpickler(pickle.Unpickler):
    """CPython's C Unpickler; find_class records and returns a stub class; nothing is imported."""

    def __init__(self, file, log: OracleStream, proto: int) -> None:
        super().__init__(file)
        self.log, self.stream_proto = log, proto

    def find_class(self, module: str, name: str):
        # The same Python 2 name mapping the base class applies before importing.
        if self.stream_proto < 3:  # C Unpickler does not expose proto: taken from the PROTO opcode
            import _compat_pickle
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        self.log.globals.append(f"{module}.{name}")
        return _stub_class(f"{module}.{name}", self.log)

    def persistent_load(self, pid):
        return object.__new__(_stub_class("<persistent>", self.log))  # not a call: no record


def oracle(data: bytes, max_streams: int | None = None) -> list[OracleStream]:
    """Load stream after stream like a repeated pickle.load, recording imports and calls."""
    f = io.BytesIO(data)
    out: list[OracleStream] = []
    while f.tell() < len(data) and (max_streams is None or len(out) < max_streams):
        log = OracleStream()
        out.append(log)
        start = f.tell()
        proto = data[start + 1] if data[start] == 0x80 and start + 1 < len(data) else 0
        try:
            InertUnpickler(f, log, proto).load()
        except Exception as exc:  # noqa: BLE001 - the oracle records how CPython failed
            log.error = f"{type(exc).__name__}: {exc}"
            break
    return out
