"""Dataset repos: loading scripts, data-file inventory, pickled Arrow extension types."""
from __future__ import annotations

import os
import pickle

import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from hf_fixtures import BENIGN_BUILDER, MALICIOUS_BUILDER, rule_ids, scan_dir, threats, write

from modelshield.scanner.findings import Severity, Status
from modelshield.scanner.policy import Policy


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_benign_loading_script_is_unreviewed_until_allowed_by_hash(tmp_path):
    write(tmp_path / "toy", {"toy.py": BENIGN_BUILDER, "README.md": "# toy\n"})
    _, arts = scan_dir(tmp_path / "toy")
    script = arts["toy.py"]
    assert script.properties["python_source"]["role"] == "dataset_script"
    assert script.properties["python_source"]["dataset_builders"] == ["ToyDataset"]
    found = {f.rule_id: f.severity for f in threats(script)}
    assert found == {"MS-PY-010": Severity.MEDIUM, "MS-PY-020": Severity.HIGH}
    policy = Policy.from_mapping({"allow": {"code": {script.sha256: "read by the data team"}}})
    _, arts = scan_dir(tmp_path / "toy", policy=policy)
    assert not threats(arts["toy.py"]) and rule_ids(arts["toy.py"]) == {"MS-PY-021"}


def test_malicious_loading_script_is_critical(tmp_path):
    write(tmp_path / "toy", {"toy.py": MALICIOUS_BUILDER})
    _, arts = scan_dir(tmp_path / "toy")
    script = arts["toy.py"]
    shell = next(f for f in script.findings if f.rule_id == "MS-PY-001")
    assert shell.severity is Severity.CRITICAL and shell.callable == "subprocess.Popen" and shell.location.line == 18
    assert next(f for f in script.findings if f.rule_id == "MS-PY-010").severity is Severity.CRITICAL
    assert next(f for f in script.findings if f.rule_id == "MS-PY-020").severity is Severity.CRITICAL


def test_script_named_after_repo_without_builder(tmp_path):
    write(tmp_path / "stan_small", {"stan_small.py": "import os\nos.system('id')\n"})
    _, arts = scan_dir(tmp_path / "stan_small")
    ids = rule_ids(arts["stan_small.py"])
    assert {"MS-PY-010", "MS-PY-001"} <= ids and "MS-PY-100" not in ids


def test_data_files_are_inventoried_with_schema(tmp_path):
    df = pd.DataFrame({"text": ["a", "b", "c"], "label": [0, 1, 0]})
    df.to_csv(tmp_path / "train.csv", index=False)
    df.to_json(tmp_path / "train.jsonl", orient="records", lines=True)
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, tmp_path / "train.parquet")
    with ipc.new_file(tmp_path / "train.arrow", table.schema) as w:
        w.write_table(table)
    with ipc.new_stream(tmp_path / "cache-train.arrow", table.schema) as w:  # what `datasets` caches
        w.write_table(table)
    _, arts = scan_dir(tmp_path)
    kinds = {p: a.properties["dataset_file"]["kind"] for p, a in arts.items()}
    assert kinds == {"train.csv": "csv", "train.jsonl": "jsonl", "train.parquet": "parquet",
                     "train.arrow": "arrow-file", "cache-train.arrow": "arrow-stream"}
    for a in arts.values():
        assert a.status is Status.INVENTORIED and a.findings == [] and a.sha256
    assert arts["train.parquet"].properties["dataset_file"]["rows"] == 3
    assert arts["train.csv"].properties["dataset_file"]["columns"] == ["text", "label"]
    assert [c["name"] for c in arts["train.arrow"].properties["dataset_file"]["schema"]] == ["text", "label"]


def test_pickled_extension_type_is_reported_and_scanned(tmp_path):
    payload = pickle.dumps(_Evil(), protocol=4)
    field = pa.field("x", pa.int64(), metadata={b"ARROW:extension:name": b"arrow.py_extension_type",
                                                b"ARROW:extension:metadata": payload})
    table = pa.table({"x": [1, 2]}, schema=pa.schema([field]))
    pq.write_table(table, tmp_path / "evil.parquet")
    with ipc.new_stream(tmp_path / "evil.arrow", table.schema) as w:
        w.write_table(table)
    _, arts = scan_dir(tmp_path)
    for name in ("evil.parquet", "evil.arrow"):
        a = arts[name]
        ds = next(f for f in a.findings if f.rule_id == "MS-DS-001")
        assert ds.cve == ["CVE-2023-47248"] and ds.evidence["field"] == "x"
        inner = [f for f in a.findings if f.location.member == "field[x]/ARROW:extension:metadata"]
        assert inner, a.findings  # the pickle engine saw the payload
        assert a.verdict.value == "unsafe"


def test_truncated_parquet_and_text_pickle_named_csv(tmp_path):
    df = pd.DataFrame({"a": [1]})
    df.to_parquet(tmp_path / "t.parquet")
    data = (tmp_path / "t.parquet").read_bytes()
    (tmp_path / "t.parquet").write_bytes(data[:len(data) // 2])
    (tmp_path / "p.csv").write_bytes(b"cos\nsystem\n(S'id'\ntR.")
    _, arts = scan_dir(tmp_path)
    assert rule_ids(arts["t.parquet"]) == {"MS-DS-002"}
    assert arts["p.csv"].format != "dataset_files"
