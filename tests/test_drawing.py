"""Drawing in many threads (a server's workers) leaves no font files open (bertdemo.drawing)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from bertdemo.audit.checks.base import Figure
from bertdemo.audit.render import draw


def _open_fonts() -> int:
    fds = Path("/proc/self/fd")
    count = 0
    for fd in os.listdir(fds):
        try:
            count += os.readlink(fds / fd).endswith((".ttf", ".otf"))
        except OSError:
            continue
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_drawing_in_new_threads_keeps_no_font_files_open() -> None:
    fig = Figure("caption", "A title with words", ["group a", "group b"], [0.4, 0.6], "x label", ref=0.5)
    draw(fig)
    before = _open_fonts()
    for _ in range(8):  # each request of a server may run in a new worker thread
        t = threading.Thread(target=draw, args=(fig,))
        t.start()
        t.join()
    assert _open_fonts() <= before, (before, _open_fonts())
