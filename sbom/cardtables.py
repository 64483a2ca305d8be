"""Training-data tables in model-card prose, read with markdown-it-py (GFM tables).

A table is a training-data table when its first column's header names a dataset or source and
another column states an amount (`data/training_tables.toml`). Each body row becomes one source:
its text, the links in its first cell, the links in the other cells (papers), and the stated
amount as an integer with the column's own header as unit. A bold "Total" row is the table's
total, not a source. Only what the cells say is returned; nothing is looked up.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from markdown_it import MarkdownIt

from . import tables

_NUMBER = re.compile(r"^[~≈]?\s*([0-9][0-9,._ ]*)$")


@dataclass
class Cell:
    text: str
    links: list[str] = field(default_factory=list)
    strong: bool = False


@dataclass
class Source:
    """One row of a training-data table."""

    name: str
    links: list[str]  # links of the first cell (where the data lives)
    references: list[str]  # links of the other cells (papers)
    amount: int | None
    unit: str | None  # the amount column's header, verbatim
    heading: str  # the card section holding the table
    row: int  # 1-based body row


@dataclass
class Table:
    heading: str
    sources: list[Source]
    total: int | None = None
    unit: str | None = None


def training_tables(sections: dict[str, str]) -> list[Table]:
    """Every training-data table of a card's sections (heading -> markdown text)."""
    out = []
    for heading, text in sections.items():
        if "|" not in text:
            continue
        for header, body in _tables(text):
            table = _as_training_table(heading, header, body)
            if table is not None:
                out.append(table)
    return out


def _tables(text: str) -> list[tuple[list[Cell], list[list[Cell]]]]:
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    out: list[tuple[list[Cell], list[list[Cell]]]] = []
    rows: list[list[Cell]] = []
    current: list[Cell] | None = None
    for token in tokens:
        if token.type == "table_open":
            rows = []
        elif token.type == "tr_open":
            current = []
        elif token.type == "inline" and current is not None:
            current.append(_cell(token))
        elif token.type == "tr_close" and current is not None:
            rows.append(current)
            current = None
        elif token.type == "table_close" and rows:
            out.append((rows[0], rows[1:]))
    return out


def _cell(token: Any) -> Cell:
    parts, links, strong = [], [], False
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "link_open" and isinstance(child.attrs.get("href"), str):
            links.append(child.attrs["href"])
        elif child.type == "strong_open":
            strong = True
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return Cell(" ".join("".join(parts).split()), links, strong)


def _as_training_table(heading: str, header: list[Cell], body: list[list[Cell]]) -> Table | None:
    words = tables.load("training_tables")
    if not header or not any(w in header[0].text.lower() for w in words["name_headers"]):
        return None
    amount_col = next((i for i, c in enumerate(header[1:], 1)
                       if any(w in c.text.lower() for w in words["amount_headers"])), None)
    if amount_col is None:
        return None
    unit = header[amount_col].text
    table = Table(heading=heading, sources=[], unit=unit)
    for n, row in enumerate(body, 1):
        if not row or not row[0].text:
            continue
        amount = _number(row[amount_col].text) if amount_col < len(row) else None
        if row[0].strong and row[0].text.lower() in words["total_labels"]:
            table.total = amount
            continue
        refs = [link for cell in row[1:] for link in cell.links]
        table.sources.append(Source(name=row[0].text, links=row[0].links, references=refs, amount=amount,
                                    unit=unit, heading=heading, row=n))
    return table if table.sources else None


def _number(text: str) -> int | None:
    m = _NUMBER.match(text.replace("*", "").strip())
    if not m:
        return None
    digits = re.sub(r"[,._ ]", "", m.group(1))
    return int(digits) if digits.isdigit() else None
