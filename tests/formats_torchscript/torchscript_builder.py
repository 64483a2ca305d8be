"""Builds TorchScript archives with the real torch (run in a subprocess: python torchscript_builder.py OUT MARKER).

Also dumps the operator registry to OUT/registry.txt. Benign: scripted and traced models of common
architectures. Malicious: modules whose `__setstate__` (run by torch.jit.load and by torch.load of
the archive) calls an operator that writes MARKER.
"""
import os
import sys
import warnings
from typing import Dict, List

import torch
from torch import nn

warnings.filterwarnings("ignore")
out, marker = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.c(x)))
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return torch.softmax(self.fc(self.drop(x)), dim=-1)


class Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.lstm = nn.LSTM(4, 8, batch_first=True)
        self.gru = nn.GRU(8, 8, batch_first=True)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(self.emb(ids))
        return self.gru(h)[0]


class Tokens(nn.Module):
    """Lists, dicts, strings and loops, as preprocessing modules use them."""

    def __init__(self) -> None:
        super().__init__()
        self.vocab: Dict[str, int] = {"a": 1, "b": 2}

    def forward(self, text: str) -> List[int]:
        out: List[int] = []
        for word in text.lower().strip().split(" "):
            if word.startswith("#"):
                continue
            out.append(self.vocab.get(word, 0))
        print("tokens", len(out))
        return sorted(out)


class Stateful(nn.Module):
    """Custom __getstate__/__setstate__ that only touch tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.ones(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.w

    @torch.jit.export
    def __getstate__(self):
        return (self.w, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[torch.Tensor, bool]) -> None:
        self.w = state[0].clone()
        self.training = state[1]


class SaveOnLoad(nn.Module):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.w = torch.ones(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.w

    @torch.jit.export
    def __getstate__(self):
        return (self.w, self.path, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[torch.Tensor, str, bool]) -> None:
        self.w = state[0]
        self.path = state[1]
        self.training = state[2]
        torch.save(self.w, self.path)


class ReadOnLoad(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.ones(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_file("/etc/hostname", False, 1, dtype=torch.uint8)


def quantized_conv() -> nn.Module:
    model = nn.Sequential(torch.ao.quantization.QuantStub(), nn.Conv2d(3, 4, 3), nn.ReLU(),
                          torch.ao.quantization.DeQuantStub()).eval()
    model.qconfig = torch.ao.quantization.get_default_qconfig("fbgemm")
    prepared = torch.ao.quantization.prepare(model)
    prepared(torch.randn(2, 3, 8, 8))
    return torch.ao.quantization.convert(prepared)


x = torch.randn(1, 3, 8, 8)
encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2).eval()
dyn = torch.ao.quantization.quantize_dynamic(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)),
                                             {nn.Linear}, dtype=torch.qint8)
benign = {
    "cnn_scripted.pt": torch.jit.script(CNN()),
    "cnn_traced.pt": torch.jit.trace(CNN().eval(), x),
    "cnn_frozen.pt": torch.jit.freeze(torch.jit.script(CNN().eval())),
    "transformer_scripted.pt": torch.jit.script(encoder),
    "transformer_traced.pt": torch.jit.trace(encoder, torch.randn(1, 3, 8), check_trace=False),
    "recurrent_scripted.pt": torch.jit.script(Recurrent()),
    "mha_scripted.pt": torch.jit.script(nn.MultiheadAttention(8, 2)),
    "quantized_dynamic.pt": torch.jit.script(dyn),
    "quantized_conv.pt": torch.jit.script(quantized_conv()),
    "tokens_scripted.pt": torch.jit.script(Tokens()),
    "stateful_scripted.pt": torch.jit.script(Stateful()),
}
for name, module in benign.items():
    torch.jit.save(module, os.path.join(out, name))
torch.jit.save(torch.jit.script(SaveOnLoad(marker)), os.path.join(out, "evil_save_on_load.pt"))
torch.jit.save(torch.jit.script(ReadOnLoad()), os.path.join(out, "evil_from_file.pt"))
with open(os.path.join(out, "registry.txt"), "w") as fh:
    fh.write("\n".join(sorted({s.name for s in torch._C._jit_get_all_schemas()})))
print("built", len(benign) + 2)
