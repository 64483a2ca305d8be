"""Fixture repos for the test Hub, built in the test with the real libraries (and exact pickle bytes)."""
from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from safetensors.numpy import save as st_save

from hub_server import Repo

MARKER_FILE = "ms_hub_marker"
MARKER_CMD = f"echo pwned > {MARKER_FILE}"
GRANTED_TOKEN = "hf_test_granted_token"


def evil_pickle() -> bytes:
    """A protocol-2 pickle calling os.system (posix.system) with a harmless marker command."""
    cmd = MARKER_CMD.encode()
    return (b"\x80\x02cposix\nsystem\nq\x00X" + len(cmd).to_bytes(4, "little") + cmd +
            b"q\x01\x85q\x02Rq\x03.")


def model_card(license_: str = "apache-2.0") -> bytes:
    return (f"---\nlicense: {license_}\nlanguage:\n- en\nbase_model: org/base\npipeline_tag: feature-extraction\n"
            f"datasets:\n- org/data\n---\n# A small test model\n\nUsed by modelshield tests.\n").encode()


def safetensors_bytes() -> bytes:
    return st_save({"embed.weight": np.arange(64, dtype=np.float32).reshape(8, 8)}, metadata={"format": "np"})


def parquet_bytes() -> bytes:
    table = pa.table({"text": ["a", "b", "c"], "label": [0, 1, 0]})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def benign_files() -> dict[str, bytes]:
    return {
        "README.md": model_card(),
        "config.json": json.dumps({"model_type": "bert", "hidden_size": 8}).encode(),
        "model.safetensors": safetensors_bytes(),
    }


def all_repos() -> list[Repo]:
    """The seeded repos: benign, malicious, dataset, gated, tampered, custom code."""
    card = {"license": "apache-2.0", "language": ["en"], "base_model": "org/base",
            "pipeline_tag": "feature-extraction", "datasets": ["org/data"]}
    benign = Repo("org/benign", "model", benign_files(), card_data=card, config={"model_type": "bert"},
                  tags=["safetensors", "bert", "license:apache-2.0"], pipeline_tag="feature-extraction",
                  library_name="transformers")
    benign.refs["v1.0"] = benign.commit
    malicious = Repo("org/malicious", "model", {
        "README.md": model_card("mit"), "config.json": b'{"model_type": "bert"}',
        "pytorch_model.bin": evil_pickle()}, card_data={"license": "mit"},
        security={"pytorch_model.bin": {"status": "unsafe", "avScan": {"virusFound": False},
                                        "pickleImportScan": {"highestSafetyLevel": "dangerous",
                                                             "imports": [{"module": "posix", "name": "system",
                                                                          "safety": "dangerous"}]}}})
    dataset = Repo("org/data", "dataset", {
        "README.md": b"---\nlicense: cc-by-4.0\n---\n# data\n",
        "data.py": b'"""Loading script."""\nimport datasets\n\n\nclass Data(datasets.GeneratorBasedBuilder):\n'
                   b'    def _info(self):\n        return datasets.DatasetInfo()\n',
        "data/train.parquet": parquet_bytes(),
        "data/test.csv": b"text,label\na,0\nb,1\n",
    }, card_data={"license": "cc-by-4.0"})
    gated = Repo("org/gated", "model", benign_files(), gated="manual", tokens={GRANTED_TOKEN})
    tampered = Repo("org/tampered", "model", benign_files())
    weights = tampered.files["model.safetensors"]
    flipped = bytearray(weights)
    flipped[-1] ^= 0x01  # same size, one byte differs, inside the tensor data
    config = tampered.files["config.json"]
    tampered.served = {"model.safetensors": bytes(flipped), "config.json": config.replace(b"8", b"9")}
    custom = Repo("org/custom", "model", {
        "config.json": json.dumps({"model_type": "x", "auto_map": {"AutoModel": "modeling_x.XModel"}}).encode(),
        "modeling_x.py": b"import torch\n\n\nclass XModel(torch.nn.Module):\n    pass\n",
    }, config={"model_type": "x", "auto_map": {"AutoModel": "modeling_x.XModel"}}, tags=["custom_code"])
    return [benign, malicious, dataset, gated, tampered, custom]


def signed_repos(private_key: str, workdir) -> list[Repo]:
    """Repos publishing a `model.sig` made with `private_key` (modelshield's signer: interop with
    model-signing is proven in tests/signatures): one whose files match it, one whose published
    config changed after signing, one whose weights are excluded from a download."""
    from pathlib import Path

    from modelshield.scanner.signatures.signing import sign_folder

    def signed(name: str, files: dict[str, bytes]) -> dict[str, bytes]:
        folder = Path(workdir) / name
        for path, data in files.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(data)
        sign_folder(str(folder), private_key)
        return {**files, "model.sig": (folder / "model.sig").read_bytes()}

    good = Repo("org/signed", "model", signed("signed", benign_files()))
    drifted_files = signed("drifted", benign_files())
    drifted_files["config.json"] = b'{"model_type": "bert", "hidden_size": 16}'
    drifted = Repo("org/drifted", "model", drifted_files)
    return [good, drifted]
