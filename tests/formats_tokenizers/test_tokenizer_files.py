"""SentencePiece models and tiktoken rank files, made by the real libraries, are recognised by
content and analysed clean (any name, `tokenizer.model` included); look-alikes that break the
schema are inconclusive, and content a loader executes is never taken for a tokenizer."""
from __future__ import annotations

import base64
import io
import pickle
import random
import shutil
from pathlib import Path

import pytest
import sentencepiece as spm
from tiktoken.load import load_tiktoken_bpe

from modelshield import scan
from modelshield.scanner.findings import Severity

WORDS = ["the", "cat", "sat", "on", "mat", "dog", "runs", "fast", "model", "token", "shield", "scan", "café", "東京"]


def _corpus(n: int = 300) -> list[str]:
    rnd = random.Random(0)
    return [" ".join(rnd.choice(WORDS) for _ in range(10)) for _ in range(n)]


@pytest.fixture(scope="module")
def sp_models(tmp_path_factory) -> dict[str, bytes]:
    """Tiny SentencePiece models trained in memory with the real trainer (unigram, bpe, byte fallback)."""
    out = {}
    for kind, extra in (("unigram", {"vocab_size": 40}), ("bpe", {"vocab_size": 40}),
                        ("bpe_bytes", {"vocab_size": 290, "byte_fallback": True})):
        buf = io.BytesIO()
        spm.SentencePieceTrainer.train(sentence_iterator=iter(_corpus()), model_writer=buf,
                                       model_type=kind.split("_")[0], minloglevel=2, hard_vocab_limit=False,
                                       **extra)
        out[kind] = buf.getvalue()
    return out


def _one(path: Path):
    report = scan(str(path))
    [art] = report.targets[0].artefacts
    return report, art


@pytest.mark.parametrize("name", ["tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "weights.bin"])
@pytest.mark.parametrize("kind", ["unigram", "bpe", "bpe_bytes"])
def test_real_sentencepiece_models_are_clean(sp_models, tmp_path, kind, name):
    path = tmp_path / name
    path.write_bytes(sp_models[kind])
    proc = spm.SentencePieceProcessor(model_file=str(path))  # the real loader accepts it
    report, art = _one(path)
    assert report.verdict.value == "clean" and art.format == "sentencepiece", art.findings
    props = art.properties["sentencepiece"]
    assert props["pieces"] == proc.get_piece_size() and props["model_type"] == kind.split("_")[0]
    assert not art.findings


def test_sentencepiece_that_breaks_the_schema_is_inconclusive(sp_models, tmp_path):
    data = sp_models["unigram"]
    path = tmp_path / "tokenizer.model"
    path.write_bytes(data[: len(data) // 2])  # truncated in the middle of a message
    report, art = _one(path)
    assert report.verdict.value == "inconclusive", art.findings
    path.write_bytes(data + b"\x30\x01")  # a varint field 6: not in ModelProto
    report, art = _one(path)
    assert report.verdict.value == "inconclusive"


def test_pickle_named_tokenizer_model_is_not_a_tokenizer(tmp_path):
    path = tmp_path / "tokenizer.model"
    path.write_bytes(pickle.dumps(shutil.rmtree, protocol=2))
    report, art = _one(path)
    assert report.verdict.value == "unsafe" and art.format != "sentencepiece"


def _tiktoken_file(path: Path, ranks: dict[bytes, int]) -> None:
    """tiktoken's format exactly as `tiktoken.load.dump_tiktoken_bpe` writes it (which needs blobfile)."""
    with open(path, "wb") as fh:
        for token, rank in sorted(ranks.items(), key=lambda x: x[1]):
            fh.write(base64.b64encode(token) + b" " + str(rank).encode() + b"\n")


@pytest.mark.parametrize("name", ["cl100k.tiktoken", "tokenizer.model", "qwen.tiktoken", "vocab.bin"])
def test_real_tiktoken_rank_files_are_clean(tmp_path, name):
    ranks = {bytes([i]): i for i in range(256)}
    ranks.update({w.encode(): 256 + i for i, w in enumerate(WORDS)})
    path = tmp_path / name
    _tiktoken_file(path, ranks)
    assert load_tiktoken_bpe(str(path)) == ranks  # the real loader reads it back
    report, art = _one(path)
    assert report.verdict.value == "clean" and art.format == "tiktoken", art.findings
    assert art.properties["tiktoken"] == {"tokens": len(ranks), "max_rank": 255 + len(WORDS), "duplicate_ranks": 0}
    assert all(f.severity <= Severity.INFO for f in art.findings)


def test_large_tiktoken_file_streams(tmp_path):
    path = tmp_path / "o200k.tiktoken"
    _tiktoken_file(path, {i.to_bytes(3, "big"): i for i in range(200_000)})
    report, art = _one(path)
    assert report.verdict.value == "clean" and art.properties["tiktoken"]["tokens"] == 200_000


def test_tiktoken_look_alike_with_a_bad_line_is_inconclusive(tmp_path):
    path = tmp_path / "tokenizer.model"
    _tiktoken_file(path, {bytes([i]): i for i in range(64)})
    with open(path, "ab") as fh:
        fh.write(b"this is not a rank line\n")
    report, _ = _one(path)
    assert report.verdict.value == "inconclusive"
