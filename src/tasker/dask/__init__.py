"""Run ``run_process`` tasks on a Dask cluster: ``TaskManager(process_backend=DaskBackend())``.

Needs the ``dask`` extra (``pip install 'tasker-gtk[dask]'``, which brings
``distributed``). ``DaskBackend()`` with no address starts a ``LocalCluster``
of worker processes on the loopback interface; see ``docs/dask.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._backend import DaskBackend

__all__ = ["DaskBackend"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import tasker.dask` is cheap and a missing extra is reported clearly.
    if name == "DaskBackend":
        try:
            import distributed  # noqa: F401
        except ImportError as error:
            raise ImportError(
                "tasker.dask needs Dask distributed: pip install 'tasker-gtk[dask]'"
            ) from error
        from ._backend import DaskBackend

        return DaskBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
