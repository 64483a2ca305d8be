"""JSON report, versioned by `schema_version` and described by schemas/report.schema.json.

Rendered in pieces (`render_chunks`): the report's frame is dumped once with a placeholder per
target, and each target's artefacts are dumped one by one into it, so that a scan of 100,000
files never holds its whole report as one dict tree and one string. The text is the same as one
`json.dumps(to_dict(report), indent=2)`.
"""
from __future__ import annotations

import json
import secrets
from typing import Iterator

from ..findings import Artefact, Report, to_dict

# Unguessable: no string from an artefact or a Hub card can impersonate it in the frame.
_PLACEHOLDER = "\x00modelshield-artefacts-" + secrets.token_hex(12) + "-{}\x00"


def render(report: Report) -> str:
    return "".join(render_chunks(report))


def render_chunks(report: Report) -> Iterator[str]:
    """The JSON report as consecutive pieces of text."""
    frame = _dumps(to_dict(report, artefacts=lambda i, _t: _PLACEHOLDER.format(i))) + "\n"
    pos = 0
    for i, target in enumerate(report.targets):
        token = json.dumps(_PLACEHOLDER.format(i))
        at = frame.index(token, pos)
        line = frame.rfind("\n", 0, at) + 1
        indent = len(frame[line:at]) - len(frame[line:at].lstrip(" "))
        yield frame[pos:at]
        yield from _artefacts(target.artefacts, indent)
        pos = at + len(token)
    yield frame[pos:]


def _artefacts(artefacts: list[Artefact], indent: int) -> Iterator[str]:
    """A list of artefacts as `json.dumps(..., indent=2)` writes it at a key indented `indent`."""
    if not artefacts:
        yield "[]"
        return
    inner = " " * (indent + 2)
    yield "["
    for n, artefact in enumerate(artefacts):
        text = _dumps(to_dict(artefact)).replace("\n", "\n" + inner)
        yield ("\n" if n == 0 else ",\n") + inner + text
    yield "\n" + " " * indent + "]"


def _dumps(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=False, default=str)
