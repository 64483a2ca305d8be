"""Format modules, tried in this order by the content sniffer (strong magic numbers first).

Each name is a module of this package implementing `interface.FormatModule`. Order matters only
where two formats share a prefix: specific before generic (torch legacy before pickle, GGUF and
safetensors before protobuf guesses, text pickles last).
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
    "pickle",         # binary pickles, protocols 2-5 (and joblib / concatenated streams)
    "template_file",  # standalone Jinja chat templates
    "model_card",     # README.md model cards (YAML front matter -> card data for the BOM)
    "hf_config",      # config.json / tokenizer_config.json / processor configs (auto_map, templates)
    "python_file",    # remote code and dataset loading scripts (ast analysis)
    "keras_config",   # bare Keras JSON configs
    "sentencepiece",  # SentencePiece ModelProto (tokenizer.model / spiece.model), by schema
    "onnx",           # ONNX protobuf (bounded parse)
    "tensorflow",     # SavedModel / GraphDef protobuf (bounded parse)
    "dataset_files",  # parquet / arrow / csv / jsonl: inventoried with schema
    "pickle_text",    # protocol 0/1 text pickles (any opcode first)
    "tiktoken",       # tiktoken BPE rank files (base64 token + rank lines)
    "text_data",      # any other UTF-8 text / JSON: inventoried (unless a loader opens it by name)
)


@lru_cache(maxsize=None)
def modules() -> tuple[ModuleType, ...]:
    """The format modules in sniffing order."""
    return tuple(importlib.import_module(f"{__name__}.{name}") for name in ORDER)
