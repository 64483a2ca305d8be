"""Format modules, tried in this order by the content sniffer (strong magic numbers first).

Each name is a module of this package implementing `interface.FormatModule`. The first module
that recognises the content names the file's format; order matters where two formats share a
prefix: specific before generic (torch legacy before pickle, GGUF and safetensors before
protobuf guesses, pickles before the text formats).

A file can be two things at once, and each loader reads its own view (`dispatch.views`): every
module in EXACT whose sniff accepts the content is analysed, not only the first. Their sniffs
follow what the loader itself checks (magic numbers, tarfile's header parse, the pickle VM's
trial run), so a match means a loader really opens the file that way. The pickle modules are one
view (an unpickler reading offset 0): only the first of them that matches runs. Protobuf guesses
and name-chosen text formats only identify content nothing else recognised.
"""
from __future__ import annotations

import importlib
from functools import lru_cache
from types import ModuleType

ORDER = (
    "lfs_pointer",    # Git LFS pointer stubs (content never fetched)
    "zip",            # zip, incl. torch zip, .npz, .keras flavours (miniz-tolerant)
    "sevenzip",       # 7z (py7zr extra), rar (unsupported -> inconclusive)
    "compressed",     # gzip, bz2, xz/lzma, zlib, zstd, lz4 wrappers (joblib compression too)
    "tar",            # tar, incl. legacy torch tar checkpoints
    "numpy",          # .npy (object arrays carry a pickle)
    "hdf5",           # Keras .h5
    "gguf",           # GGUF (header sanity, chat templates)
    "safetensors",    # safetensors (strict header)
    "torch_legacy",   # legacy torch.save: magic-number pickle + storages
    "pickle",         # PROTO-led pickles, protocols 0-5 (and joblib / concatenated streams)
    "pickle_text",    # pickles without PROTO (protocol 0/1, any opcode first), before any text format
    "template_file",  # standalone Jinja chat templates
    "model_card",     # README.md model cards (YAML front matter -> card data for the BOM)
    "hf_config",      # config.json / tokenizer_config.json / processor configs (auto_map, templates)
    "python_file",    # remote code and dataset loading scripts (ast analysis)
    "keras_config",   # bare Keras JSON configs
    "sentencepiece",  # SentencePiece ModelProto (tokenizer.model / spiece.model), by schema
    "onnx",           # ONNX protobuf (bounded parse)
    "tensorflow",     # SavedModel / GraphDef protobuf (bounded parse)
    "dataset_files",  # parquet / arrow / csv / jsonl: inventoried with schema
    "tiktoken",       # tiktoken BPE rank files (base64 token + rank lines)
    "text_data",      # any other UTF-8 text / JSON: inventoried (unless a loader opens it by name)
)

EXACT = ("zip", "sevenzip", "compressed", "tar", "numpy", "hdf5", "gguf", "safetensors",
         "torch_legacy", "pickle", "pickle_text")
UNPICKLER_AT_0 = ("torch_legacy", "pickle", "pickle_text")


@lru_cache(maxsize=None)
def modules() -> tuple[ModuleType, ...]:
    """The format modules in sniffing order."""
    return tuple(importlib.import_module(f"{__name__}.{name}") for name in ORDER)
