"""The two commands' set-up: what keeps `make setup` working on any machine.

0.1 shipped a tracked `.venv` whose interpreter link only resolved on the
machine that made it; these tests keep that class of breakage out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: What `make setup` needs from the tree (README.md is the package's readme).
SETUP_FILES = ("Makefile", "pyproject.toml", "README.md", "scripts", "src")


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


needs_git = pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout"
)


@needs_git
def test_git_tracks_no_ignored_path() -> None:
    tracked = _git("ls-files", "-ci", "--exclude-standard").split()
    assert tracked == [], f"git tracks build or run output: {tracked[:10]}"


@needs_git
def test_repo_check_target_fails_on_a_tracked_ignored_path(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(repo)], check=True)
    shutil.copy2(ROOT / "Makefile", repo / "Makefile")  # the Makefile under test, committed or not
    (repo / ".venv").mkdir()
    (repo / ".venv" / "pyvenv.cfg").write_text("home = /nowhere\n")
    subprocess.run(["git", "-C", str(repo), "add", "-f", ".venv/pyvenv.cfg"], check=True)
    result = subprocess.run(
        ["make", "-s", "repo-check"], cwd=repo, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert ".venv/pyvenv.cfg" in result.stderr


def _setup_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in SETUP_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, tree / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
            )
        else:
            shutil.copy2(source, tree / name)
    return tree


def _make_setup(tree: Path, python: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SKIP_SYSTEM_DEPS="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(
        ["make", "setup", f"PYTHON={python}", "EXTRAS="],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _base_python() -> str:
    """The interpreter this venv was made from: what a user would pass as PYTHON."""
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def test_setup_rebuilds_a_venv_whose_interpreter_link_dangles(tmp_path: Path) -> None:
    tree = _setup_tree(tmp_path)
    bin_dir = tree / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python3").symlink_to("/nonexistent/other-machine/bin/python3")
    (bin_dir / "python").symlink_to("python3")
    (tree / ".venv" / "pyvenv.cfg").write_text("home = /nonexistent/other-machine/bin\n")

    result = _make_setup(tree, _base_python())

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "rebuilding .venv: its interpreter link is broken" in output
    venv_python = bin_dir / "python"
    check = subprocess.run(
        [str(venv_python), "-c", "import tasker, blinker; print(tasker.__name__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert check.stdout.strip() == "tasker"
    # A second run finds everything in place and says nothing about rebuilding.
    again = _make_setup(tree, _base_python())
    assert again.returncode == 0, again.stdout + again.stderr
    assert "rebuilding" not in again.stdout + again.stderr
    assert "pip install" not in again.stdout


def _base_prefix(python: str) -> str:
    return subprocess.run(
        [python, "-c", "import os, sys; print(os.path.realpath(sys.base_prefix))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _another_python() -> str | None:
    """An interpreter >= 3.11 other than this one (e.g. the distribution's), if any."""
    mine = _base_prefix(_base_python())
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3", shutil.which("python3")):
        if candidate is None or not os.access(candidate, os.X_OK):
            continue
        ok = subprocess.run(
            [candidate, "-c", "import sys, venv; sys.exit(sys.version_info < (3, 11))"],
            capture_output=True,
            check=False,
        )
        if ok.returncode == 0 and _base_prefix(candidate) != mine:
            return candidate
    return None


def test_setup_rebuilds_a_venv_made_by_another_python(tmp_path: Path) -> None:
    other = _another_python()
    if other is None:
        pytest.skip("only one Python >= 3.11 on this machine")
    tree = _setup_tree(tmp_path)
    subprocess.run([other, "-m", "venv", "--without-pip", str(tree / ".venv")], check=True)

    result = _make_setup(tree, _base_python())

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "rebuilding .venv: it was made by another Python" in output
    assert _base_prefix(str(tree / ".venv" / "bin" / "python")) == _base_prefix(_base_python())


def test_find_python_prefers_python3_and_falls_back_to_the_newest(tmp_path: Path) -> None:
    script = ROOT / "scripts" / "find-python.sh"
    real = _base_python()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # Only versioned names on PATH: the newest >= 3.11 wins; too old ones are skipped.
    (bin_dir / "python3.11").symlink_to(real)
    old = bin_dir / "python3.10"
    old.write_text("#!/bin/sh\nexit 1\n")
    old.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:/usr/bin/nonexistent")
    found = subprocess.run(
        ["/bin/bash", str(script)], env=env, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == str(bin_dir / "python3.11")
    (bin_dir / "python3").symlink_to(real)
    found = subprocess.run(
        ["/bin/bash", str(script)], env=env, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == str(bin_dir / "python3")


def test_tasker_gtk_without_pygobject_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['gi'] = None  # as if PyGObject were not installed\n"
        "import tasker\n"
        "try:\n"
        "    import tasker.gtk\n"
        "except ModuleNotFoundError as error:\n"
        "    print(error.name, '|', error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    name, _, message = result.stdout.partition(" | ")
    assert name == "gi"
    assert 'pip install "tasker-gtk[gtk]"' in message
    assert "libgirepository" in message
