"""A tiny NumPy / CuPy switch for the array-shaped forecasting maths (SSA, MSSA).

``PM_ARRAY_BACKEND`` picks the array module: ``numpy`` (the default when unset, and what the
tests use), ``cupy``, or ``auto`` (CuPy when it imports *and* a CUDA device is present, else
NumPy). Asking
for ``cupy`` explicitly on a machine without CuPy or without a GPU raises
:class:`BackendUnavailable` with the reason, rather than silently running on the CPU.

Model code writes its maths against ``backend.xp`` (``xp.einsum``, ``xp.fft``, slicing) and
calls :meth:`Backend.eigh` / :meth:`Backend.svd` / :meth:`Backend.truncated_svd` for linear
algebra, moving data with :meth:`Backend.to_device` / :meth:`Backend.to_host` at the edges.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType
from typing import Any

import numpy as np

ENV_VAR = "PM_ARRAY_BACKEND"
CHOICES = ("auto", "numpy", "cupy")


class BackendUnavailable(RuntimeError):
    """The requested array backend cannot run here (e.g. ``cupy`` without a CUDA device)."""


@lru_cache(maxsize=1)
def _cupy_probe() -> tuple[ModuleType | None, str]:
    """``(cupy, "")`` when CuPy imports and sees a CUDA device, else ``(None, reason)``."""
    try:
        import cupy  # type: ignore[import-not-found]
    except Exception as exc:  # ImportError, or a broken CUDA install raising at import
        return None, f"cupy is not importable ({type(exc).__name__}: {exc}); install the 'gpu' extra"
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:
        return None, f"cupy imported but no usable CUDA runtime/device ({type(exc).__name__}: {exc})"
    if count < 1:
        return None, "cupy imported but no CUDA device is present"
    return cupy, ""


def cupy_available() -> tuple[bool, str]:
    """Whether the CuPy backend can run here and, when not, why (for test skip reasons)."""
    module, reason = _cupy_probe()
    return module is not None, reason


@lru_cache(maxsize=1)
def _threadpool_controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # optional: without it BLAS keeps its default thread count
        return None
    return ThreadpoolController()


@contextmanager
def single_thread_blas() -> Iterator[None]:
    """Run host BLAS/LAPACK on one thread: SSA's many small (L ≤ a few hundred) products and
    eigen-problems are 5–10× *slower* with OpenBLAS threads on a busy 2-core machine."""
    controller = _threadpool_controller()
    if controller is None:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield


@dataclass(frozen=True)
class Backend:
    """An array module plus the few linear-algebra calls SSA needs, on host or device."""

    name: str
    xp: ModuleType

    @property
    def is_gpu(self) -> bool:
        return self.name == "cupy"

    def to_device(self, a: Any, dtype: Any = None) -> Any:
        """``a`` as an array of this backend (float64 unless ``dtype`` says otherwise)."""
        return self.xp.asarray(a, dtype=self.xp.float64 if dtype is None else dtype)

    def to_host(self, a: Any) -> np.ndarray:
        """``a`` as a NumPy array on the host (a no-op view for the NumPy backend)."""
        if self.is_gpu and not isinstance(a, np.ndarray):
            return a.get()
        return np.asarray(a)

    def eigh(self, a: Any) -> tuple[Any, Any]:
        """Eigenvalues (descending) and eigenvectors (columns) of symmetric ``a`` (batched ``...×L×L``)."""
        w, v = self.xp.linalg.eigh(a)
        return w[..., ::-1], v[..., ::-1]

    def svd(self, a: Any) -> tuple[Any, Any, Any]:
        """Thin SVD ``u, s, vt`` of ``a`` (singular values descending)."""
        return self.xp.linalg.svd(a, full_matrices=False)

    def truncated_svd(self, a: Any, k: int) -> tuple[Any, Any, Any]:
        """Leading ``k`` singular triplets (descending) by a Lanczos solver (``svds``)."""
        if self.is_gpu:
            from cupyx.scipy.sparse.linalg import svds  # type: ignore[import-not-found]
        else:
            from scipy.sparse.linalg import svds
        u, s, vt = svds(a, k=k)
        order = self.xp.argsort(s)[::-1]
        return u[:, order], s[order], vt[order]


def get_backend(name: str | None = None) -> Backend:
    """The backend named by ``name`` or, when ``None``, by ``$PM_ARRAY_BACKEND`` (default ``numpy``)."""
    choice = (name if name is not None else os.environ.get(ENV_VAR, "numpy")).strip().lower() or "numpy"
    if choice not in CHOICES:
        raise ValueError(f"{ENV_VAR} must be one of {', '.join(CHOICES)}; got {choice!r}")
    if choice == "numpy":
        return Backend("numpy", np)
    module, reason = _cupy_probe()
    if module is not None:
        return Backend("cupy", module)
    if choice == "cupy":
        raise BackendUnavailable(f"array backend 'cupy' was requested ({ENV_VAR}=cupy) but {reason}")
    return Backend("numpy", np)


def resolve(backend: Backend | str | None) -> Backend:
    """A :class:`Backend` from an instance, a name or ``None`` (the environment's choice)."""
    return backend if isinstance(backend, Backend) else get_backend(backend)
