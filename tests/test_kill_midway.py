"""SIGKILL ``bertdemo audit`` and ``bertdemo finetune`` midway over a previous output: nothing is lost.

Each test writes a complete previous output into DIR, starts the command again as a real
subprocess over the same DIR (other seed, so a finished run would look different), kills it with
SIGKILL at a chosen moment, and checks that DIR is byte-identical to the previous output, complete,
and holds no half-written (temporary) file. A hard kill can leave the hidden staging folder of the
interrupted run *beside* DIR (``.DIR.tmp-*``); that is expected and allowed, never inside DIR.

Moments: (1) while computing, once the run has printed progress; (2) while writing, as soon as
its staging folder appears beside DIR. Moment 2 is best effort: if the run finishes before the
poll sees its staging folder, DIR must hold the new, complete output instead (checked too).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bertdemo", *args], env=env, cwd=str(ROOT),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float, poll: float) -> bool:
    """Poll until ``ready()`` (True) or the process ends / time runs out (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(poll)
    return False


def kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    if proc.stderr is not None:
        proc.stderr.close()


def first_stderr_bytes(proc: subprocess.Popen, n: int = 1) -> Callable[[], bool]:
    """Ready once the process has written to stderr (tqdm progress); reads without blocking."""
    assert proc.stderr is not None
    os.set_blocking(proc.stderr.fileno(), False)
    seen: list[bytes] = []

    def ready() -> bool:
        try:
            chunk = proc.stderr.read(4096)  # type: ignore[union-attr]
        except BlockingIOError:
            chunk = None
        if chunk:
            seen.append(chunk)
        return sum(map(len, seen)) >= n

    return ready


def staging_appeared(out: Path) -> Callable[[], bool]:
    before = {p.name for p in out.parent.iterdir()}
    return lambda: any(p.name.startswith(f".{out.name}.") and p.name not in before for p in out.parent.iterdir())


def assert_nothing_half_written(out: Path) -> None:
    for p in out.rglob("*"):
        assert not p.name.endswith(".tmp") and ".tmp-" not in p.name and ".staging-" not in p.name, p
    for p in out.parent.iterdir():  # beside DIR: only our inputs and hidden leftovers of the killed run
        assert p == out or p.name.startswith(".") or p.suffix in {".csv", ".toml"} or p.name == "base", p


# ---- audit ---------------------------------------------------------------------------------------
def audit_args(out: Path, data: Path, seed: int, progress: bool) -> list[str]:
    args = ["audit", "--checks", "templates,classifier,user_data", "--data", str(data), "--group-col", "g",
            "--label-col", "label", "--limit", "4", "--seed", str(seed), "--out", str(out)]
    return args if progress else [*args, "--no-progress"]


def assert_complete_report(out: Path) -> None:
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["files"], manifest
    for name, meta in manifest["files"].items():
        data = (out / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == meta["sha256"] and len(data) == meta["bytes"], name
    assert (out / "report.html").read_text(encoding="utf-8").rstrip().endswith("</html>")
    json.loads((out / "report.json").read_text(encoding="utf-8"))


@pytest.fixture()
def audit_setup(model_env: dict[str, str], tmp_path: Path) -> tuple[Path, Path, dict[str, bytes]]:
    from bertdemo.cli import main

    data = tmp_path / "data.csv"
    with data.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label", "g"])
        for i in range(40):
            w.writerow([["i loved this movie", "a terrible film", "a great film", "sad day"][i % 4],
                        ["positive", "negative", "positive", "negative"][i % 4], "ab"[i % 2]])
    out = tmp_path / "report"
    assert main(audit_args(out, data, seed=0, progress=False)) in (0, 1)
    assert_complete_report(out)
    return out, data, snapshot(out)


@pytest.mark.parametrize("moment", ["computing", "writing"])
def test_kill_audit_midway(audit_setup: tuple[Path, Path, dict[str, bytes]], model_env: dict[str, str], moment: str) -> None:
    out, data, before = audit_setup
    proc = start(audit_args(out, data, seed=7, progress=moment == "computing"), model_env)
    try:
        ready = first_stderr_bytes(proc) if moment == "computing" else staging_appeared(out)
        caught = wait_for(proc, ready, timeout=300, poll=0.002)
    finally:
        kill(proc)
    if caught:
        assert proc.returncode == -signal.SIGKILL
        assert snapshot(out) == before, "the previous report changed"
    else:  # the run finished before the poll caught it: it must have replaced the report whole
        assert moment == "writing" and proc.returncode in (0, 1), proc.returncode
        warnings.warn("audit finished before its staging folder was seen; checked the new report instead", stacklevel=1)
    assert_complete_report(out)
    assert_nothing_half_written(out)


# ---- finetune ------------------------------------------------------------------------------------
def finetune_args(out: Path, train: Path, base: Path, seed: int, epochs: int) -> list[str]:
    return ["finetune", "--train", str(train), "--eval", str(train), "--base", str(base), "--out", str(out),
            "--epochs", str(epochs), "--batch-size", "4", "--max-length", "16", "--seed", str(seed)]


def assert_complete_model(out: Path) -> None:
    from safetensors.torch import load_file

    assert load_file(str(out / "model.safetensors"))
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["id2label"], config
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["best_epoch"] >= 1
    assert (out / "README.md").read_text(encoding="utf-8").strip()


@pytest.fixture()
def finetune_setup(tiny_mlm_dir: Path, tmp_path: Path) -> tuple[Path, Path, dict[str, bytes]]:
    from bertdemo.finetune import finetune

    train = tmp_path / "train.csv"
    with train.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(64):
            w.writerow([["i loved this movie", "a terrible film", "a great film", "sad day"][i % 4],
                        ["positive", "negative"][i % 2]])
    out = tmp_path / "model"
    finetune(str(train), str(train), str(out), base=str(tiny_mlm_dir), epochs=1, batch_size=4, max_length=16,
             seed=0, progress=False)
    assert_complete_model(out)
    return out, train, snapshot(out)


@pytest.mark.parametrize("moment", ["computing", "writing"])
def test_kill_finetune_midway(finetune_setup: tuple[Path, Path, dict[str, bytes]], tiny_mlm_dir: Path,
                              model_env: dict[str, str], moment: str) -> None:
    out, train, before = finetune_setup
    # Many epochs while computing (killed long before the end); few when aiming at the write.
    epochs = 200 if moment == "computing" else 2
    proc = start(finetune_args(out, train, tiny_mlm_dir, seed=7, epochs=epochs), model_env)
    try:
        ready = first_stderr_bytes(proc, n=80) if moment == "computing" else staging_appeared(out)
        caught = wait_for(proc, ready, timeout=300, poll=0.001)
    finally:
        kill(proc)
    if caught:
        assert proc.returncode == -signal.SIGKILL
        assert snapshot(out) == before, "the previous model changed"
    else:
        assert moment == "writing" and proc.returncode == 0, proc.returncode
        warnings.warn("finetune finished before its staging folder was seen; checked the new model instead", stacklevel=1)
    assert_complete_model(out)
    assert_nothing_half_written(out)
