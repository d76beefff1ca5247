"""tasker.dask's public surface, its lazy import, and the error without the dask extra."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap

import pytest

import tasker.dask


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_public_surface_is_pinned_and_documented() -> None:
    assert tasker.dask.__all__ == ["DaskBackend"]
    pytest.importorskip("distributed")
    backend = tasker.dask.DaskBackend
    assert backend.__doc__
    public = [n for n, v in vars(backend).items() if not n.startswith("_") and callable(v)]
    assert {"attach", "submit", "cancel", "shutdown", "start"} <= set(public)
    for name in [*public, "client"]:
        assert inspect.getdoc(getattr(backend, name)), name
    assert list(inspect.signature(backend).parameters)[:4] == [
        "client_or_address",
        "security",
        "restart_on_grace",
        "n_workers",
    ]


def test_importing_tasker_or_tasker_dask_loads_no_dask() -> None:
    done = run_python(
        """
        import sys
        import tasker, tasker.dask
        assert "distributed" not in sys.modules and "dask" not in sys.modules, "dask loaded"
        assert "tasker.dask._backend" not in sys.modules
        """
    )
    assert done.returncode == 0, done.stderr
    core = run_python(
        """
        import sys
        import tasker
        tasker.TaskManager()
        assert not [m for m in sys.modules if m.startswith("tasker.dask")], "core imported dask"
        """
    )
    assert core.returncode == 0, core.stderr


def test_without_the_extra_the_error_names_it() -> None:
    done = run_python(
        """
        import sys
        sys.modules["distributed"] = None  # as if the dask extra were not installed
        try:
            from tasker.dask import DaskBackend
        except ImportError as error:
            print(error)
        else:
            raise SystemExit("no ImportError")
        """
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'tasker-gtk[dask]'" in done.stdout
