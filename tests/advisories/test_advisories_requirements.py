"""Runtime packages from requirements.txt, pyproject.toml, uv.lock, poetry.lock, pylock.toml and
interpreters: exact pins give versions; everything else is unknown, never guessed."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from modelshield.advisories.errors import InputError
from modelshield.advisories.runtime import load_runtime, source_for


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def versions(runtime) -> dict[str, str | None]:
    return {p.name: p.version for p in runtime.packages}


def test_requirements_txt_pins_hashes_markers_includes(tmp_path):
    write(tmp_path / "base.txt", """
        numpy==1.26.4  # a comment
        -c constraints.txt
        joblib
        """)
    write(tmp_path / "constraints.txt", "joblib==1.4.2\nscipy==1.0\n")
    req = write(tmp_path / "requirements.txt", """
        --index-url https://example.invalid/simple
        -r base.txt
        torch==2.5.1+cu121 \\
            --hash=sha256:1111111111111111111111111111111111111111111111111111111111111111 \\
            --hash=sha256:2222222222222222222222222222222222222222222222222222222222222222
        Keras==3.8.0 ; python_version >= "3.8"
        onnx==1.15.0 ; sys_platform == "nonexistent-os"
        transformers>=4.30,<5
        safetensors==0.4.*
        llama-cpp-python===0.2.71
        vllm @ https://files.example.invalid/vllm-0.6.3-cp38-abi3-manylinux1_x86_64.whl
        -e git+https://example.invalid/repo.git#egg=peft
        this is not a requirement
        """)
    runtime = load_runtime([req])
    got = versions(runtime)
    assert got["torch"] == "2.5.1+cu121"
    assert got["keras"] == "3.8.0"
    assert got["numpy"] == "1.26.4"
    assert got["joblib"] == "1.4.2"  # pinned by the -c constraint
    assert got["llama-cpp-python"] == "0.2.71"
    assert got["vllm"] == "0.6.3"  # from the wheel file name
    assert got["transformers"] is None and got["safetensors"] is None and got["peft"] is None
    assert "onnx" not in got and "scipy" not in got
    torch = next(p for p in runtime.packages if p.name == "torch")
    assert len(torch.hashes) == 2 and torch.hashes[0].startswith("sha256:1111")
    assert torch.purl == "pkg:pypi/torch@2.5.1%2Bcu121" and torch.source == "requirements.txt:3"
    notes = " ".join(runtime.notes)
    assert "excluded by its marker" in notes and "unparseable" in notes
    assert runtime.source.startswith("requirements:")


def test_include_loops_and_missing_files(tmp_path):
    write(tmp_path / "a.txt", "-r b.txt\ntorch==2.6.0\n")
    write(tmp_path / "b.txt", "-r a.txt\n")
    runtime = load_runtime([tmp_path / "a.txt"])
    assert versions(runtime) == {"torch": "2.6.0"}
    with pytest.raises(InputError, match="cannot read"):
        load_runtime([write(tmp_path / "c.txt", "-r missing.txt\n")])
    with pytest.raises(InputError, match="not UTF-8"):
        (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00torch")
        load_runtime([tmp_path / "bin.txt"])


def test_pyproject_dependencies_and_poetry_tables(tmp_path):
    path = write(tmp_path / "pyproject.toml", """
        [project]
        name = "svc"
        dependencies = ["torch==2.5.1", "transformers>=4.40"]
        [project.optional-dependencies]
        gguf = ["llama-cpp-python==0.2.72"]
        [dependency-groups]
        dev = ["keras~=3.8"]
        [tool.poetry.dependencies]
        python = "^3.10"
        onnx = "1.15.0"
        numpy = "^1.26"
        joblib = { version = "==1.4.2" }
        """)
    assert versions(source_for(path).collect()) == {
        "torch": "2.5.1", "transformers": None, "llama-cpp-python": "0.2.72", "keras": None,
        "onnx": "1.15.0", "numpy": None, "joblib": "1.4.2"}


def test_uv_lock(tmp_path):
    path = write(tmp_path / "uv.lock", """
        version = 1
        requires-python = ">=3.10"
        [[package]]
        name = "svc"
        version = "0.1.0"
        source = { editable = "." }
        [[package]]
        name = "keras"
        version = "3.8.0"
        source = { registry = "https://pypi.org/simple" }
        sdist = { url = "https://example.invalid/keras-3.8.0.tar.gz", hash = "sha256:aaaa", size = 1 }
        wheels = [{ url = "https://example.invalid/keras-3.8.0-py3-none-any.whl", hash = "sha256:bbbb", size = 1 }]
        [[package]]
        name = "torch"
        version = "2.6.0+cpu"
        source = { registry = "https://download.pytorch.org/whl/cpu" }
        """)
    runtime = source_for(path).collect()
    assert versions(runtime) == {"keras": "3.8.0", "torch": "2.6.0+cpu"}
    keras = runtime.packages[0]
    assert keras.hashes == ["sha256:bbbb", "sha256:aaaa"] and keras.purl == "pkg:pypi/keras@3.8.0"


def test_poetry_lock_and_pylock(tmp_path):
    poetry = write(tmp_path / "poetry.lock", """
        [[package]]
        name = "llama-cpp-python"
        version = "0.2.71"
        files = [{ file = "llama_cpp_python-0.2.71.tar.gz", hash = "sha256:cccc" }]
        [metadata]
        lock-version = "2.0"
        """)
    assert versions(source_for(poetry).collect()) == {"llama-cpp-python": "0.2.71"}
    pylock = write(tmp_path / "pylock.toml", """
        lock-version = "1.0"
        created-by = "test"
        [[packages]]
        name = "onnx"
        version = "1.15.0"
        wheels = [{ name = "onnx-1.15.0-cp311-cp311-manylinux_2_17_x86_64.whl", hashes = { sha256 = "dddd" } }]
        """)
    runtime = source_for(pylock).collect()
    assert versions(runtime) == {"onnx": "1.15.0"} and runtime.packages[0].hashes == ["sha256:dddd"]


def test_malformed_lock_files_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="not valid TOML"):
        source_for(write(tmp_path / "uv.lock", "[[package]\nname=")).collect()
    with pytest.raises(InputError, match="not a poetry.lock"):
        source_for(write(tmp_path / "poetry.lock", "x = 1\n")).collect()
    with pytest.raises(InputError, match="a folder"):
        source_for(tmp_path)


def test_current_environment_and_python_interpreter_agree():
    here = load_runtime(None, None)
    there = load_runtime(None, Path(sys.executable))
    assert here.source.startswith("environment:") and there.source.startswith("environment:")
    assert versions(here) == versions(there)
    assert "torch" in versions(here)  # the test extras install torch


def test_bad_interpreters_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_runtime(None, tmp_path / "nope")
    script = tmp_path / "python"
    script.write_text("#!/bin/sh\necho broken >&2\nexit 3\n")
    script.chmod(0o755)
    with pytest.raises(InputError, match="exited 3"):
        load_runtime(None, script)
    script.write_text("#!/bin/sh\necho not json\n")
    with pytest.raises(InputError, match="did not answer"):
        load_runtime(None, script)
