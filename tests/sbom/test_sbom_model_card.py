"""The model_card format module: front matter, sections, and what it refuses to take."""
from __future__ import annotations

import json

from modelshield import scan
from modelshield.scanner.blob import BytesBlob
from modelshield.scanner.formats import model_card

CARD = """---
license: mit
pipeline_tag: text-classification
datasets:
- imdb
base_model: acme/base
model-index:
- name: tiny
  results:
  - task: {type: text-classification}
    dataset: {name: IMDB, type: imdb, split: test}
    metrics:
    - {type: accuracy, value: 0.93}
created: 2024-01-02
---

# Tiny classifier

A small model that classifies reviews.

## Intended uses & limitations

Use it for English movie reviews only.

```python
# Not a heading: inside a fence
print("hi")
```

## Limitations

It fails on sarcasm.
"""


def test_parse_card_front_matter_and_sections() -> None:
    info = model_card.parse_card(CARD)
    assert info["error"] is None and info["has_front_matter"] is True
    data = info["card_data"]
    assert data["license"] == "mit" and data["datasets"] == ["imdb"]
    assert data["created"] == "2024-01-02"  # dates become ISO strings (JSON-safe)
    assert data["model-index"][0]["results"][0]["metrics"][0]["value"] == 0.93
    assert info["title"] == "Tiny classifier"
    assert list(info["sections"]) == ["Tiny classifier", "Intended uses & limitations", "Limitations"]
    assert "Not a heading" in info["sections"]["Intended uses & limitations"]
    assert info["sections"]["Limitations"] == "It fails on sarcasm."
    json.dumps(info)


def test_broken_yaml_is_recorded_not_raised() -> None:
    info = model_card.parse_card("---\nlicense: [mit\n---\n# T\n")
    assert info["card_data"] == {} and info["error"].startswith("invalid YAML front matter")
    assert model_card.parse_card("---\n- a\n- b\n---\n")["error"] == "front matter is a YAML list, not a mapping"


def test_alias_bomb_is_bounded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    info = model_card.parse_card("---\n" + "\n".join(lines) + "\n---\n")
    assert info["card_data"] == {} and "nodes" in info["error"]


def test_sniff_by_name_and_content() -> None:
    head = CARD.encode()
    assert model_card.sniff(head, BytesBlob(head), "README.md")
    assert model_card.sniff(head, BytesBlob(head), "card.md")
    plain = b"# Notes\nno front matter\n"
    assert model_card.sniff(plain, BytesBlob(plain), "README.md")
    assert not model_card.sniff(plain, BytesBlob(plain), "NOTES.md")
    assert not model_card.sniff(head, BytesBlob(head), "README.txt")
    binary = b"\x80\x02cos\nsystem\n" + bytes(range(256))
    assert not model_card.sniff(binary, BytesBlob(binary), "README.md")


def test_scan_puts_card_in_properties(tmp_path) -> None:
    (tmp_path / "README.md").write_text(CARD, encoding="utf-8")
    report = scan(str(tmp_path))
    (artefact,) = report.artefacts
    assert artefact.format == "model_card"
    assert artefact.findings == [] and artefact.verdict.value == "clean"
    assert artefact.properties["model_card"]["card_data"]["pipeline_tag"] == "text-classification"
