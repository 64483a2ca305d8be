"""False alarms of the remote-code review on real model code: transformers' own modeling files.

1. Each `modeling_*/tokenization_*/configuration_*/image_processing_*` file of the installed
   transformers is placed in a folder whose config.json maps it in `auto_map`, as a repository
   shipping that file as remote code would: allowlist-first, each is MS-PY-020 by design (unreviewed);
   what must hold is that the call analysis ranks none critical and adds no behaviour above info.
2. The transformers package folder itself is scanned as it is: library files no loader imports
   from a repository are not remote code (no MS-PY-020).

    python bench/bench_remote_code.py [--limit N]
"""
from __future__ import annotations

import argparse
import collections
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modelshield import scan  # noqa: E402
from modelshield.scanner.findings import Kind, Severity  # noqa: E402

PATTERNS = ("modeling_*.py", "tokenization_*.py", "configuration_*.py", "image_processing_*.py")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    import transformers

    pkg = Path(transformers.__file__).parent
    files = sorted({p for pat in PATTERNS for p in (pkg / "models").rglob(pat)})
    if args.limit:
        files = files[:args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        for i, src in enumerate(files):
            repo = Path(tmp, f"r{i:05d}")
            repo.mkdir()
            shutil.copy(src, repo / src.name)
            (repo / "config.json").write_text(json.dumps({"model_type": "x",
                                                          "auto_map": {"AutoModel": f"{src.stem}.X"}}))
        start = time.perf_counter()
        report = scan(tmp)
        took = time.perf_counter() - start
    review = collections.Counter()
    behaviours = collections.Counter()
    flagged = []
    for art in report.targets[0].artefacts:
        if not art.path.endswith(".py"):
            continue
        unreviewed = [f for f in art.findings if f.rule_id == "MS-PY-020"]
        review[str(unreviewed[0].severity) if unreviewed else "not reached"] += 1
        other = [f for f in art.findings if f.rule_id != "MS-PY-020" and f.severity > Severity.INFO]
        for f in other:
            behaviours[f"{f.rule_id} {f.severity}"] += 1
        if other or (unreviewed and unreviewed[0].severity > Severity.HIGH):
            flagged.append(art.path)
    print(f"transformers {transformers.__version__}: {len(files)} files promoted as remote code, {took:.1f} s")
    print(f"MS-PY-020 by severity: {dict(review)}")
    print(f"other findings above info: {sum(behaviours.values())} {dict(behaviours)}")
    if flagged:
        print("flagged beyond 'unreviewed':", ", ".join(flagged[:40]))
    start = time.perf_counter()
    own = scan(str(pkg))
    took = time.perf_counter() - start
    threats = collections.Counter(f.rule_id for _, _, f in own.all_findings()
                                  if f.kind is Kind.THREAT and f.severity > Severity.INFO)
    n = len(own.targets[0].artefacts)
    print(f"transformers package scanned as is: {n} files, {took:.1f} s, threats above info: {dict(threats) or 0}")


if __name__ == "__main__":
    main()
