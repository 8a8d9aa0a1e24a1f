"""Process-wide memory settings and release: what keeps a long-lived server's resident memory flat.

Measured on this project's server workload (benchmarks/bench_memory.py and the in-process steps it
is made of): TensorFlow's oneDNN build pools every CPU allocation in its own allocator, which never
gives memory back (calibrating the default model left the process 420 MB bigger, for good); with
the system allocator the same memory returns to glibc, and `malloc_trim` hands it to the system.
glibc gives each thread its own heap arena (up to 8 per core): with Streamlit's script threads and a
worker thread per job, freed memory piled up in many arenas (3 short jobs in a row grew the process
about 20 MB each, even with malloc_trim); with two arenas about 6 MB each, and the rest was
TensorFlow's gradient registry (see core.training).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os

ONEDNN_SYSTEM_ALLOCATOR = "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def _libc():
    """glibc, or None where the C library is another (macOS, musl) or cannot be loaded."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


_LIBC = _libc()


def configure() -> None:
    """Set up a process that will use TensorFlow, before it is imported: oneDNN on the system
    allocator, few glibc arenas, quiet start-up notes.

    Each can be overridden: set TF_ONEDNN_USE_SYSTEM_ALLOCATOR=0, or MALLOC_ARENA_MAX, yourself.
    """
    os.environ.setdefault(ONEDNN_SYSTEM_ALLOCATOR, "1")
    # TensorFlow's C++ start-up chatter (oneDNN notes, CPU feature lists) means nothing to a user.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if _LIBC is not None and "MALLOC_ARENA_MAX" not in os.environ:
        _LIBC.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)


def release_memory() -> None:
    """Collect reference cycles (a fitted Keras model lives in several), then return freed heap."""
    gc.collect()
    trim_heap()


def trim_heap() -> None:
    """Hand the memory glibc holds free back to the system (nothing elsewhere)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
