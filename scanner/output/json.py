"""JSON report, versioned by `schema_version` and described by schemas/report.schema.json."""
from __future__ import annotations

import json

from ..findings import Report, to_dict


def render(report: Report) -> str:
    return json.dumps(to_dict(report), indent=2, sort_keys=False, default=str) + "\n"
