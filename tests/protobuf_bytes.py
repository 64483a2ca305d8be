"""Exact protobuf wire-format builders for test fixtures (TensorFlow and ONNX without their libraries)."""
from __future__ import annotations


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def length_delimited(field: int, payload: bytes) -> bytes:
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def integer(field: int, value: int) -> bytes:
    return varint(field << 3) + varint(value)
