"""Give freed heap back to the OS after a burst (glibc `malloc_trim`).

Why: after 200 clients for 20 s the plugin's RSS stayed ~20 % above its baseline a minute later
(bench/RESULTS.md): the Python objects were freed, but glibc kept the pages in its per-thread
arenas (each of the ~200 burst threads got one). `malloc_trim(0)` returns free pages of every
arena. The RPC pool calls it once when a burst is over (its last surplus worker exits), so the
cost (a few ms walking the arenas) is never paid on a request's path. No-op off glibc, and
with TOTO_MALLOC_TRIM=0 (for measuring without it: bench/load_mixed.py --env TOTO_MALLOC_TRIM=0).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)
_libc: ctypes.CDLL | None = None
_looked = False


def _glibc() -> ctypes.CDLL | None:
    global _libc, _looked
    if not _looked:
        _looked = True
        name = ctypes.util.find_library("c")
        try:
            lib = ctypes.CDLL(name) if name else None
            _libc = lib if lib is not None and hasattr(lib, "malloc_trim") else None
        except OSError:
            _libc = None
    return _libc


def trim_heap() -> bool:
    """Return free heap pages to the OS; True when glibc did release something."""
    libc = _glibc()
    if libc is None:
        return False
    try:
        released = bool(libc.malloc_trim(0))
    except Exception:  # never let housekeeping break the pool
        log.debug("malloc_trim failed", exc_info=True)
        return False
    log.debug("heap trimmed after a burst", extra={"kv": {"released": released}})
    return released
