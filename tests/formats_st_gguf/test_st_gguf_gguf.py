"""GGUF: files from gguf-py's GGUFWriter; facts checked against gguf's GGUFReader; malicious chat
templates flagged; byte-surgery malformations inconclusive or flagged; tensor data never read."""
from __future__ import annotations

import struct
from pathlib import Path

import gguf
import numpy as np
import pytest
from helpers.cli import scan_json
from st_gguf_helpers import analyse_bytes

from modelshield.scanner.blob import FileBlob
from modelshield.scanner.findings import Verdict

HERE = Path(__file__).parent
LLAMA3 = (HERE / "templates" / "meta-llama-Llama-3.1-8B-Instruct.jinja").read_text(encoding="utf-8")
EVIL = (HERE / "malicious" / "cycler_globals.jinja").read_text(encoding="utf-8")


def write_gguf(path: Path, template: str | None = LLAMA3, named: dict[str, str] | None = None,
               tensors: dict[str, np.ndarray] | None = None) -> Path:
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-test")
    w.add_context_length(2048)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_token_list(["<s>", "</s>"] + [f"t{i}" for i in range(500)])
    w.add_token_scores([0.0] * 502)
    if template is not None and not named:
        w.add_chat_template(template)
    if named:
        w.add_chat_template([{"name": "default", "template": template or ""}] +
                            [{"name": k, "template": v} for k, v in named.items()])
    for name, arr in (tensors or {"tok_embd.weight": np.zeros((8, 32), np.float16),
                                  "norm.weight": np.ones(32, np.float32)}).items():
        w.add_tensor(name, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_benign_gguf_clean_and_matches_reader(tmp_path):
    path = write_gguf(tmp_path / "model.gguf")
    code, report = scan_json(str(path))
    art = report["targets"][0]["artefacts"][0]
    assert code == 0 and art["format"] == "gguf" and art["verdict"] == "clean" and art["findings"] == []
    facts = art["properties"]["gguf"]
    reader = gguf.GGUFReader(str(path))
    assert facts["tensor_count"] == len(reader.tensors) == 2
    assert facts["metadata_count"] == len(reader.fields) - 3  # the reader adds GGUF.version/counts
    assert facts["data_offset"] == reader.data_offset
    assert facts["parameters"] == sum(int(t.n_elements) for t in reader.tensors)
    assert facts["architecture"] == "llama" and facts["name"] == "tiny-test"
    assert facts["context_length"] == 2048 and facts["quantization"] == "F16"
    assert facts["dtypes"] == {"F16": 1, "F32": 1}
    assert facts["chat_templates"] == ["tokenizer.chat_template"]
    assert facts["metadata"]["tokenizer.ggml.tokens"] == {"array": "string", "length": 502}


def test_malicious_templates_in_gguf(tmp_path):
    path = write_gguf(tmp_path / "evil.gguf", named={"tool_use": EVIL})
    art = analyse_bytes(FileBlob(path, "evil.gguf"), "evil.gguf")
    assert art.verdict is Verdict.UNSAFE
    hits = [f for f in art.findings if f.rule_id == "MS-TPL-001"]
    assert hits and {f.evidence["field"] for f in hits} == {"tokenizer.chat_template.tool_use"}
    assert all(f.location.offset and f.location.line for f in hits)
    # the reported offset points at the template text in the file
    assert path.read_bytes()[hits[0].location.offset:].startswith(EVIL.encode()[:20])
    path2 = write_gguf(tmp_path / "evil2.gguf", template=EVIL)
    code, report = scan_json(str(path2))
    assert code == 1 and "MS-TPL-001" in {f["rule_id"] for f in report["targets"][0]["artefacts"][0]["findings"]}


def _kv_offsets(data: bytes) -> dict[str, int]:
    """Offset of each metadata key's u64 length field (benign file, little-endian)."""
    pos, out = 24, {}
    n_kv = struct.unpack_from("<Q", data, 16)[0]
    for _ in range(n_kv):
        start = pos
        n = struct.unpack_from("<Q", data, pos)[0]
        key = data[pos + 8:pos + 8 + n].decode()
        pos += 8 + n
        vtype = struct.unpack_from("<I", data, pos)[0]
        pos += 4
        out[key] = start
        if vtype == 8:
            pos += 8 + struct.unpack_from("<Q", data, pos)[0]
        elif vtype == 9:
            item, count = struct.unpack_from("<IQ", data, pos)
            pos += 12
            for _ in range(count):
                if item == 8:
                    pos += 8 + struct.unpack_from("<Q", data, pos)[0]
                else:
                    pos += {0: 1, 1: 1, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8}[item]
        else:
            pos += {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}[vtype]
    out["<tensors>"] = pos
    return out


@pytest.fixture(scope="module")
def benign(tmp_path_factory) -> bytes:
    return write_gguf(tmp_path_factory.mktemp("gguf") / "b.gguf").read_bytes()


def _patch(data: bytes, offset: int, fmt: str, value) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def _cases(data: bytes):
    kv = _kv_offsets(data)
    tensors = kv["<tensors>"]
    name_len = struct.unpack_from("<Q", data, tensors)[0]
    dims_at = tensors + 8 + name_len  # u32 n_dims, then dims
    n_dims = struct.unpack_from("<I", data, dims_at)[0]
    type_at = dims_at + 4 + 8 * n_dims
    return {
        "huge tensor count": (_patch(data, 8, "<Q", 1 << 62), "MS-GGUF-002", "tensor count"),
        "huge kv count": (_patch(data, 16, "<Q", (1 << 64) - 1), "MS-GGUF-002", "metadata entry count"),
        "kv count beyond file": (_patch(data, 16, "<Q", 10_000_000), "MS-GGUF-001", "cannot fit"),
        "huge key length": (_patch(data, kv["general.name"], "<Q", 1 << 63), "MS-GGUF-002", "length"),
        "string past EOF": (_patch(data, kv["general.name"], "<Q", len(data)), "MS-GGUF-001", "past the end"),
        "bad value type": (_patch(data, kv["general.name"] + 8 + len("general.name"), "<I", 99),
                           "MS-GGUF-001", "invalid value type"),
        "too many dims": (_patch(data, dims_at, "<I", 1000), "MS-GGUF-002", "dimensions"),
        "negative dim": (_patch(data, dims_at + 4, "<Q", (1 << 64) - 5), "MS-GGUF-002", "negative"),
        "bad ggml type": (_patch(data, type_at, "<I", 777), "MS-GGUF-001", "unknown ggml type"),
        "misaligned offset": (_patch(data, type_at + 4, "<Q", 3), "MS-GGUF-001", "expected 0"),
        "offset past EOF": (_patch(data, type_at + 4, "<Q", 1 << 40), "MS-GGUF-001", "expected 0"),
        "truncated data": (data[:-64], "MS-GGUF-001", "past the end"),
        "truncated header": (data[:tensors + 5], "MS-GGUF-001", "truncated"),
        "version 1": (_patch(data, 4, "<I", 1), "MS-GGUF-001", "version 1"),
        "version 99": (_patch(data, 4, "<I", 99), "MS-GGUF-001", "unsupported GGUF version"),
    }


CASE_NAMES = ["huge tensor count", "huge kv count", "kv count beyond file", "huge key length", "string past EOF",
              "bad value type", "too many dims", "negative dim", "bad ggml type", "misaligned offset",
              "offset past EOF", "truncated data", "truncated header", "version 1", "version 99"]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_byte_surgery(benign, case):
    data, rule, reason = _cases(benign)[case]
    art = analyse_bytes(data, "m.gguf")
    assert art.format == "gguf"
    assert [f.rule_id for f in art.findings] == [rule], [(f.rule_id, f.message) for f in art.findings]
    assert reason in art.findings[0].message
    assert art.verdict is (Verdict.UNSAFE if rule == "MS-GGUF-002" else Verdict.INCONCLUSIVE)


def test_big_endian_and_alignment(tmp_path):
    w = gguf.GGUFWriter(str(tmp_path / "be.gguf"), "llama", endianess=gguf.GGUFEndian.BIG)
    w.add_custom_alignment(64)
    w.add_chat_template(LLAMA3)
    w.add_tensor("x", np.zeros(5, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    art = analyse_bytes(FileBlob(tmp_path / "be.gguf", "be.gguf"), "be.gguf")
    assert art.verdict is Verdict.CLEAN, [f.message for f in art.findings]
    assert art.properties["gguf"]["endian"] == "big" and art.properties["gguf"]["alignment"] == 64


def test_sparse_multi_gb_file_is_not_read_whole(tmp_path):
    """A 6 GiB declared tensor (sparse file): only the header region is read."""
    path = tmp_path / "big.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_chat_template(LLAMA3)
    n = 3 << 30  # F16 elements -> 6 GiB
    w.add_tensor_info("huge.weight", (n,), np.dtype(np.float16), n * 2)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    header_end = path.stat().st_size
    data_start = (header_end + 31) // 32 * 32
    with open(path, "r+b") as f:
        f.truncate(data_start + n * 2)

    class Counting(FileBlob):
        read = 0

        def read_at(self, offset, size):
            out = super().read_at(offset, size)
            Counting.read += len(out)
            return out

    with Counting(path, "big.gguf") as blob:
        art = analyse_bytes(blob, "big.gguf")
    assert art.verdict is Verdict.CLEAN, [f.message for f in art.findings]
    assert art.properties["gguf"]["parameters"] == n
    assert Counting.read < 3 << 20, Counting.read
