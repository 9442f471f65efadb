"""The Makefile's housekeeping: `make clean` keeps the database and password key (`var/`);
`make distclean` asks before deleting them; `make install-prod` builds a venv without dev tools."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def make(*args: str, cwd: Path, answer: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=cwd, input=answer,
                          capture_output=True, text=True, timeout=900)  # fmt: skip


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    for d in (".venv/bin", "var", "build"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "var" / "secret.key").write_text("key\n")
    return tmp_path


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_clean_keeps_the_database_and_key_and_distclean_asks(checkout: Path) -> None:
    assert make("clean", cwd=checkout).returncode == 0
    assert not (checkout / ".venv").exists() and not (checkout / "build").exists()
    assert (checkout / "var" / "secret.key").exists()
    kept = make("distclean", cwd=checkout, answer="n\n")
    assert kept.returncode == 0 and "kept var/" in kept.stdout and (checkout / "var").exists()
    assert make("distclean", cwd=checkout, answer="y\n").returncode == 0
    assert not (checkout / "var").exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_install_prod_has_no_dev_tools_and_runs(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a clean copy: the build must not depend on this checkout's venv
    skip = (".venv", ".git", "var", "build", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis")
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*skip))
    prefix = tmp_path / "opt" / "webcallback"
    built = make("install-prod", f"PREFIX={prefix}", "PYTHON=python3", cwd=source)
    assert built.returncode == 0, built.stderr[-3000:]
    listed = subprocess.run([prefix / "bin" / "python", "-m", "pip", "list", "--format=freeze"],
                            capture_output=True, text=True, check=True).stdout.lower()  # fmt: skip
    names = {line.partition("==")[0] for line in listed.splitlines()}
    assert "webcallback" in names and "uvicorn" in names and "sippy" in names
    assert not names & {"pytest", "mypy", "ruff", "hypothesis", "schemathesis", "pytest-asyncio", "granian"}
    helped = subprocess.run([prefix / "bin" / "webcallback", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "db" in helped.stdout and "run" in helped.stdout
    sample = subprocess.run(
        [prefix / "bin" / "webcallback", "config", "init"], capture_output=True, text=True
    )
    assert sample.returncode == 0 and "[engine.sip]" in sample.stdout
