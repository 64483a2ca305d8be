"""SentencePiece models (`tokenizer.model`, `spiece.model`, `sentencepiece.bpe.model`).

A SentencePiece model is a `ModelProto` (sentencepiece_model.proto, proto2): repeated `pieces`
(1: SentencePiece {1: piece string, 2: score float, 3: type enum}), `trainer_spec` (2),
`normalizer_spec` (3), `self_test_data` (4), `denormalizer_spec` (5), extensions from 200. The
library parses it with protobuf and runs nothing from it, so a file that has this schema all the
way through is analysed and clean; a file that starts like one and breaks the schema later is
inconclusive. Recognised by content (the name only says which loader would try it).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import FormatError
from ..protowire import I32, LEN, VARINT, Limits, Reader
from ..errors import ProtoError
from ..findings import FormatName

if TYPE_CHECKING:
    from ..blob import Blob
    from ..context import ScanContext

NAME = FormatName.SENTENCEPIECE
_TOP = {1: LEN, 2: LEN, 3: LEN, 4: LEN, 5: LEN}
_PIECE = {1: LEN, 2: I32, 3: VARINT}
_TYPES = {1: "normal", 2: "unknown", 3: "control", 4: "user_defined", 5: "unused", 6: "byte"}
_MODEL_TYPES = {1: "unigram", 2: "bpe", 3: "word", 4: "char"}
_SNIFF_PIECES = 64
_EXTENSIONS = 200  # `extensions 200 to max` in ModelProto and SentencePiece
MAX_PIECE = 1 << 16


def sniff(head: bytes, blob: "Blob", name: str) -> bool:
    """Starts with well-formed `pieces` (each a UTF-8 piece, a float score, a known type)."""
    if not head.startswith(b"\x0a"):
        return False
    reader = Reader(blob, limits=Limits(max_fields=_SNIFF_PIECES * 8))
    pieces = 0
    try:
        for f in reader:
            if f.number != 1 or f.wire != LEN or pieces >= _SNIFF_PIECES:
                break
            if not _piece(reader.sub(f), {}):
                return False
            pieces += 1
    except (FormatError, ValueError):
        return False
    return pieces > 0


def _piece(reader: Reader, counts: dict[str, int]) -> bool:
    """Check one SentencePiece message; count its type. False if it breaks the schema."""
    has_piece = False
    kind = "normal"
    for f in reader:
        if f.number >= _EXTENSIONS:
            continue
        if _PIECE.get(f.number) != f.wire:
            return False
        if f.number == 1:
            reader.text(f, MAX_PIECE)
            has_piece = True
        elif f.number == 3:
            if f.value not in _TYPES:
                return False
            kind = _TYPES[f.value]
    counts[kind] = counts.get(kind, 0) + 1
    return has_piece


def analyse(blob: "Blob", ctx: "ScanContext") -> None:
    """Walk the whole ModelProto; record vocabulary facts for the BOM."""
    reader = Reader(blob, limits=Limits(max_string=MAX_PIECE))
    counts: dict[str, int] = {}
    props: dict[str, Any] = {}
    pieces = 0
    for f in reader:
        if not pieces % 8192:
            ctx.check_time()
        if f.number >= _EXTENSIONS:
            continue
        if _TOP.get(f.number) != f.wire:
            raise ProtoError(f"ModelProto field {f.number} with wire type {f.wire} is not in the schema",
                             f.tag_offset)
        if f.number == 1:
            if not _piece(reader.sub(f), counts):
                raise ProtoError(f"piece {pieces} breaks the SentencePiece schema", f.tag_offset)
            pieces += 1
        elif f.number == 2:
            props.update(_trainer(reader.sub(f)))
        elif f.number == 3:
            props.update(_normalizer(reader.sub(f)))
    if not pieces:
        raise FormatError("no pieces", rule_id="MS-GEN-006")
    props.update(pieces=pieces, piece_types=dict(sorted(counts.items())))
    if not ctx.members:
        ctx.artefact.format = NAME
    ctx.artefact.properties["sentencepiece"] = props


def _trainer(reader: Reader) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in reader:
        if f.number == 3 and f.wire == VARINT:
            out["model_type"] = _MODEL_TYPES.get(f.value, str(f.value))
        elif f.number == 4 and f.wire == VARINT:
            out["trainer_vocab_size"] = f.value
        elif f.number == 35 and f.wire == VARINT:
            out["byte_fallback"] = bool(f.value)
    return out


def _normalizer(reader: Reader) -> dict[str, Any]:
    for f in reader:
        if f.number == 1 and f.wire == LEN:
            return {"normalizer": reader.text(f, 256)}
    return {}
