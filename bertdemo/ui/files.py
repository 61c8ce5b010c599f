"""What the app keeps on disk, and for how long (the About tab and the README say the same).

Every file a visitor uploads or downloads lives under one folder per running app process,
``<GRADIO_TEMP_DIR or the system temp dir>/bertdemo-run-<pid>-<start>/``: gradio's cache (uploads and
the copies it serves) in ``gradio/``, the app's own result files in ``outputs/`` (or the operator's
``output_dir``). They are deleted

- when the page is closed (gradio's ``unload``): the session's result folder and every cached file its
  requests sent or received, unless another open session holds the same file (gradio names cached
  files by their content, so two visitors uploading the same file share one copy);
- ``file_ttl_s`` seconds after they were written, for callers that never close a page (API clients
  send no heartbeat, so ``unload`` never runs for them) and for uploads never used in a request;
- all of them at a clean shutdown, and, at the next start, the folders of app processes that no
  longer run (after SIGKILL or a crash).

A file's link is its only protection: whoever holds the link can download the file until it is
deleted (links carry a content hash, so they cannot be guessed without the file's content).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

RUN_PREFIX = "bertdemo-run-"
_BASE: Path | None = None  # where run folders live; fixed at the first call (the env var is then ours)
_RUN: Path | None = None


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), so a reused pid is not taken for ours."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "0"


def _alive(folder: Path) -> bool:
    """Whether the app process that made ``folder`` (named ``bertdemo-run-<pid>-<start>``) still runs."""
    try:
        pid_text, start = folder.name[len(RUN_PREFIX):].split("-", 1)
        pid = int(pid_text)
    except ValueError:
        return False
    if not Path("/proc").is_dir():  # no procfs: the pid alone (best effort)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return Path(f"/proc/{pid}").exists() and _start_time(pid) == start


def run_folder() -> Path:
    """This process's folder (made once), with gradio's cache pointed into it (``GRADIO_TEMP_DIR``) and
    the folders of dead app processes beside it removed. Call before any gradio component is built."""
    global _BASE, _RUN
    if _RUN is None:
        _BASE = Path(os.environ.get("GRADIO_TEMP_DIR") or tempfile.gettempdir()).resolve()
        _BASE.mkdir(parents=True, exist_ok=True)
        for old in _BASE.glob(RUN_PREFIX + "*"):
            if old.is_dir() and not _alive(old):
                shutil.rmtree(old, ignore_errors=True)
        _RUN = _BASE / f"{RUN_PREFIX}{os.getpid()}-{_start_time(os.getpid())}"
        (_RUN / "gradio").mkdir(parents=True, exist_ok=True)
        atexit.register(shutil.rmtree, _RUN, ignore_errors=True)
    os.environ["GRADIO_TEMP_DIR"] = str(_RUN / "gradio")
    return _RUN


def lifetime_words(seconds: int) -> str:
    """``file_ttl_s`` as a person says it (``3600`` -> ``1 hour``)."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"


def promise(ttl_s: int) -> str:
    """What the app keeps and for how long, in the visitor's words (the About tab shows it)."""
    return (f"Files you upload and the files you download (CSV scores, audit reports) are kept in this app's own "
            f"folder and deleted when you close the page; files of API callers (who never close a page) and uploads "
            f"never used are deleted {lifetime_words(ttl_s)} after they were written, and everything at a restart. "
            "Until then, anyone holding a file's link can download it: do not share the links.")


def _paths(payload: Any) -> Iterator[str]:
    """Every file path in a gradio payload (``FileData``-shaped dicts, at any depth)."""
    if isinstance(payload, dict):
        if isinstance(payload.get("path"), str):
            yield payload["path"]
        for value in payload.values():
            if isinstance(value, (dict, list, tuple)):
                yield from _paths(value)
    elif isinstance(payload, (list, tuple)):
        for value in payload:
            yield from _paths(value)


class FileKeeper:
    """The session result folders and the record of which session touched which cached file."""

    def __init__(self, ttl_s: int, output_dir: str = "") -> None:
        run = run_folder()
        self.ttl_s = ttl_s
        self.cache = Path(os.environ["GRADIO_TEMP_DIR"]).resolve()
        self.out_root = (Path(output_dir) if output_dir else run / "outputs").resolve()
        self.out_root.mkdir(parents=True, exist_ok=True)
        self._holders: dict[Path, set[str]] = {}  # cached file -> sessions that sent or received it
        self._lock = threading.Lock()
        self.keep: Callable[[], set[str]] = set  # files gradio keeps for everyone (see keep_in_cache)
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None

    @staticmethod
    def key(session: Any) -> str:
        """A session's folder name (a hash: the session id itself never appears on disk)."""
        return hashlib.sha256(str(session).encode()).hexdigest()[:16]

    def session_root(self, session: Any) -> Path:
        return self.out_root / self.key(session or "anonymous")

    # -- recording and ending sessions --------------------------------------------------------------
    def record(self, session: str | None, payload: Any) -> None:
        """Note the cached files a request of ``session`` sent or received."""
        if not session:
            return
        with self._lock:
            for raw in _paths(payload):
                path = Path(raw).resolve()
                if path.is_relative_to(self.cache):
                    self._holders.setdefault(path, set()).add(session)

    def end_session(self, session: str | None) -> None:
        """Delete the session's result folder and the cached files no other open session holds."""
        if not session:
            return
        shutil.rmtree(self.session_root(session), ignore_errors=True)
        keep_paths = {Path(p).resolve() for p in self.keep()}
        with self._lock:
            gone = []
            for path, holders in self._holders.items():
                holders.discard(session)
                if not holders:
                    gone.append(path)
            for path in gone:
                del self._holders[path]
        for path in gone:
            if path not in keep_paths:
                _remove_file(path, self.cache)

    # -- expiry ------------------------------------------------------------------------------------
    def sweep(self, now: float | None = None) -> int:
        """Delete result files and cached files older than ``ttl_s`` (except ``keep``); how many went."""
        cutoff = (time.time() if now is None else now) - self.ttl_s
        keep_paths = {Path(p).resolve() for p in self.keep()}
        removed = 0
        for root in (self.out_root, self.cache):
            for path in list(root.rglob("*")):
                try:
                    st = path.stat()  # ctime too: gradio copies keep the original's mtime
                    if path.is_file() and path.resolve() not in keep_paths and max(st.st_mtime, st.st_ctime) < cutoff:
                        path.unlink()
                        removed += 1
                except OSError:
                    continue
            _prune_empty(root, cutoff)
        with self._lock:  # forget files that are gone (API sessions never end)
            for path in [p for p in self._holders if not p.exists()]:
                del self._holders[path]
        return removed

    def sweep_every(self) -> float:
        """How often the sweeper looks: a quarter of the lifetime, at most every 5 minutes."""
        return max(1.0, min(300.0, self.ttl_s / 4))

    def start_sweeper(self) -> None:
        """Sweep in a daemon thread until :meth:`stop`."""
        if self._sweeper is not None:
            return

        def loop() -> None:
            while not self._stop.wait(self.sweep_every()):
                self.sweep()

        self._sweeper = threading.Thread(target=loop, name="bertdemo-file-sweeper", daemon=True)
        self._sweeper.start()

    def stop(self) -> None:
        self._stop.set()


def _remove_file(path: Path, root: Path) -> None:
    """Delete a cached file and its (content-hash) folder when that is left empty."""
    try:
        path.unlink()
    except OSError:
        return
    parent = path.parent
    if parent != root and parent.is_relative_to(root):
        with contextlib.suppress(OSError):
            parent.rmdir()


def _prune_empty(root: Path, cutoff: float) -> None:
    """Remove empty folders under ``root`` not touched since ``cutoff`` (deepest first)."""
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        try:
            if folder.stat().st_mtime < cutoff and not any(folder.iterdir()):
                folder.rmdir()
        except OSError:
            continue


def keep_in_cache(demo: Any) -> set[str]:
    """Files gradio keeps for every visitor (examples, components' default values): never deleted."""
    keep: set[str] = set()
    for block in getattr(demo, "blocks", {}).values():
        keep.update(getattr(block, "keep_in_cache", set()))
    return keep


def track(demo: Any, keeper: FileKeeper) -> None:
    """Record, for each request, the cached files it sent or received, under its session; start expiry."""
    keeper.keep = lambda: keep_in_cache(demo)
    keeper.start_sweeper()
    original = demo.process_api

    async def process_api(block_fn: Any, inputs: list[Any], state: Any = None, request: Any = None,
                          *args: Any, **kwargs: Any) -> dict[str, Any]:
        session = kwargs.get("session_hash") or getattr(request, "session_hash", None)
        keeper.record(session, inputs)
        result = await original(block_fn, inputs, state, request, *args, **kwargs)
        keeper.record(session, result.get("data") if isinstance(result, dict) else None)
        return result

    demo.process_api = process_api  # type: ignore[method-assign]
