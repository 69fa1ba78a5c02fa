"""glibc malloc's own accounting of its heap, for bench/memory.py.

Python, pyarrow and gRPC allocate through glibc's malloc; DuckDB through its own jemalloc. RSS
alone cannot tell them apart, mallinfo2 can.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
    ]  # fmt: skip


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """glibc with mallinfo2 (2.33+), or None (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        return None
    return libc


def glibc_heap() -> tuple[int, int] | None:
    """(bytes in use, bytes free in its arenas) of glibc malloc over all arenas, or None."""
    libc = _glibc()
    if libc is None:
        return None
    info = libc.mallinfo2()
    return info.uordblks + info.hblkhd, info.fordblks
