"""No user text in logs or on disk by default; the opt-in setting is the only way it gets there."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bertdemo.config import load_settings
from bertdemo.service import ModelService

SECRET = "zebra quokka confidential"  # words unlikely to appear anywhere else


def _files_containing(root: Path, needle: bytes, since: float) -> list[Path]:
    hits = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            try:
                if path.stat().st_mtime < since or path.stat().st_size > 20_000_000:
                    continue
                if needle in path.read_bytes():
                    hits.append(path)
            except OSError:
                continue
    return hits


def _exercise(svc: ModelService) -> None:
    svc.fill_mask(f"{SECRET} is a [MASK].")
    svc.next_sentence(SECRET, "the sky is blue.")
    svc.rank_next(SECRET, ["a", "b"])
    svc.sentiment([SECRET])
    svc.explain_sentiment(SECRET)
    svc.pseudo_log_likelihood([SECRET])


def test_service_logs_no_user_text_by_default(settings, caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    import time

    start = time.time() - 1
    caplog.set_level(logging.DEBUG)
    _exercise(ModelService(settings))
    assert caplog.records, "the service should log something (counts), or this test proves nothing"
    assert not any(SECRET in r.getMessage() for r in caplog.records)
    assert _files_containing(Path(tempfile.gettempdir()), SECRET.encode(), start) == []


def test_opt_in_logs_user_text(settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _exercise(ModelService(settings.replace(log_user_text=True)))
    assert any(SECRET in r.getMessage() for r in caplog.records)


def test_env_var_turns_logging_on() -> None:
    assert load_settings(env={"BERTDEMO_LOG_USER_TEXT": "1"}).log_user_text is True
    assert load_settings(env={}).log_user_text is False


def test_cli_output_streams_hold_no_text_but_the_answer(model_env: dict[str, str]) -> None:
    env = {**model_env, "TRANSFORMERS_VERBOSITY": "debug"}
    proc = subprocess.run([sys.executable, "-m", "bertdemo", "sentiment", SECRET, "--json"], env=env,
                          capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0
    assert SECRET.encode() not in proc.stderr
