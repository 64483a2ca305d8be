"""Red team: remote code that reaches exec through builtins lookups (missed before wave 2: only the
medium 'needs trust_remote_code' finding was raised)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli import scan_json

from redteam_remote_code_cases import CASES, write_repo

HERE = Path(__file__).resolve().parent


def _by_file(report: dict) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for t in report["targets"]:
        for a in t["artefacts"]:
            out[a["path"].rsplit("/", 1)[-1]] = {f["rule_id"]: f["severity"] for f in a["findings"]}
    return out


@pytest.fixture(scope="module")
def repos(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("rc")
    marker = root / "marker"
    for name in CASES:
        write_repo(root / name, name, str(marker))
    return root, marker


def test_every_evasion_blocks_at_high(repos):
    root, _ = repos
    code, report = scan_json("--fail-on", "high", *[str(root / n) for n in sorted(CASES)])
    assert code == 1
    files = [a for t in report["targets"] for a in t["artefacts"] if a["path"].endswith("configuration_x.py")]
    assert len(files) == len(CASES)
    for artefact in files:
        severities = {f["rule_id"]: f["severity"] for f in artefact["findings"]}
        assert severities.get("MS-PY-002") == "high", (artefact["path"], severities)
    configs = [a for t in report["targets"] for a in t["artefacts"] if a["path"].endswith("config.json")]
    assert all({f["rule_id"]: f["severity"] for f in a["findings"]}.get("MS-HF-001") == "high" for a in configs)


def test_transformers_runs_every_evasion_offline(repos):
    """Proof in one subprocess: AutoConfig(trust_remote_code=True) executes each case's marker write."""
    root, marker = repos
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(root / "hf_home")}
    proc = subprocess.run([sys.executable, str(HERE / "redteam_remote_code_proof.py"), str(marker),
                           *[str(root / n) for n in sorted(CASES)]], capture_output=True, text=True,
                          timeout=240, env=env)
    results = dict(line.split() for line in proc.stdout.splitlines() if not line.startswith("error"))
    assert results == {name: "True" for name in CASES}, proc.stderr[-2000:]


@pytest.mark.parametrize("source", [
    "import builtins\nprint(vars(builtins).get('len'))\n",
    "x = cond and value or other\ny = (a if a else b).shape\n",
    "def f(m):\n    return m.__dict__['weight']\n",
    "import os\npath = os.environ.get('HF_HOME') if True else None\n",
])
def test_benign_shapes_stay_below_high(tmp_path, source):
    (tmp_path / "config.json").write_text('{"model_type": "x", "auto_map": {"AutoModel": "modeling_x.M"}}')
    (tmp_path / "modeling_x.py").write_text(source + "\nclass M: pass\n")
    _, report = scan_json(str(tmp_path))
    sev = _by_file(report)["modeling_x.py"]
    assert sev.pop("MS-PY-020") == "high", sev  # unreviewed, but nothing ranks it critical
    assert not {k for k, v in sev.items() if v in ("high", "critical")}, sev
