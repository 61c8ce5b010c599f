"""Matplotlib housekeeping shared by every face that draws (audit reports, the audit tab, attention PNGs).

Matplotlib caches an open font file per drawing *thread* (``font_manager._get_font`` is an LRU cache keyed
by thread id, 64 entries). A server draws in a different worker thread per request, so each audit left
two more font files open: the 30-minute soak went from 19 to 36 open descriptors, towards 128+. Dropping
the cache after drawing lets the font objects close their files; the next drawing reopens them (a few ms).
"""

from __future__ import annotations


def release_fonts() -> None:
    """Close the font files matplotlib keeps per thread (no-op if matplotlib or its cache is absent)."""
    try:
        from matplotlib import font_manager
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        return
    cache_clear = getattr(getattr(font_manager, "_get_font", None), "cache_clear", None)
    if cache_clear is not None:
        cache_clear()
