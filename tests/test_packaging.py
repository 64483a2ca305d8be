"""The wheel installs the card folders under the modelshield namespace, never as top-level packages."""
from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the tree: setuptools writes build/ and *.egg-info beside the
    sources, which must not change under the tests running in parallel (nor be left in the checkout)."""
    out = tmp_path_factory.mktemp("dist")
    src = tmp_path_factory.mktemp("src") / "modelshield"
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "tests"))
    proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    [whl] = out.glob("modelshield-*.whl")
    return whl


def test_wheel_maps_folders_into_the_namespace(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"modelshield"}, tops
    for required in ("modelshield/scanner/engine.py", "modelshield/sbom/__init__.py",
                     "modelshield/advisories/__init__.py", "modelshield/scanner/data/rules/core.toml",
                     "modelshield/scanner/schemas/report.schema.json", "modelshield/cli.py",
                     "modelshield/scanner/data/template_rules.toml", "modelshield/scanner/data/policy/deny.toml",
                     "modelshield/sbom/data/loaders.toml", "modelshield/py.typed",
                     # `report` and `sbom check` read these at run time
                     "modelshield/sbom/data/templates/evidence.html.j2", "modelshield/sbom/data/etsi_en_304_223.toml",
                     "modelshield/sbom/schemas/evidence-report.schema.json", "modelshield/sbom/data/profiles.toml"):
        assert required in names, required


def test_wheel_imports_outside_the_source_tree(wheel: Path, tmp_path: Path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, system_site_packages=True).create(env_dir)
    py = env_dir / "bin" / "python"
    # Install without deps into the venv (deps come from the system site); the source tree is not on sys.path.
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target",
                    str(tmp_path / "site"), str(wheel)], check=True, timeout=300)
    code = ("import sys, importlib.util, modelshield, modelshield.scanner.rules as r;"
            "assert modelshield.__file__.startswith(sys.argv[1]), modelshield.__file__;"
            "assert importlib.util.find_spec('scanner') is None and importlib.util.find_spec('sbom') is None;"
            "print(len(list(r.load_rules())))")
    proc = subprocess.run([str(py), "-I", "-c", f"import sys; sys.path.insert(0, {str(tmp_path / 'site')!r}); " + code,
                           str(tmp_path / "site")], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) >= 8


@pytest.mark.parametrize("folder", ["scanner", "sbom", "advisories"])
def test_bare_folders_refuse_to_import_from_the_root(folder: str):
    """`import scanner` from the repo root would load a second copy of every class: it fails loudly."""
    proc = subprocess.run([sys.executable, "-c", f"import {folder}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0
    assert f"the folder '{folder}' is the package modelshield.{folder}" in proc.stderr


def test_symlinked_tree_is_the_installed_tree():
    """Tools run from the root (mypy, editors) see `modelshield.scanner` through modelshield/scanner."""
    for folder in ("scanner", "sbom", "advisories"):
        link = ROOT / "modelshield" / folder
        assert link.is_symlink() and link.resolve() == (ROOT / folder).resolve(), link
