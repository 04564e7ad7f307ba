"""numba, where present: `jit` compiles a kernel at first call and caches it on disk; `enabled()` says
whether the compiled kernels are used (ABM_KERNEL=numpy selects the numpy paths, which tests compare)."""
from __future__ import annotations

import os

try:
    import numba
    jit = numba.njit(cache=True, nogil=True)
    jit_inline = numba.njit(cache=True, nogil=True, inline="always")   # a helper inlined where it is called
except ImportError:                    # pragma: no cover - numba is a dependency
    numba = None
    jit = jit_inline = lambda f: f  # noqa: E731


def enabled() -> bool:
    return numba is not None and os.environ.get("ABM_KERNEL", "numba") != "numpy"
