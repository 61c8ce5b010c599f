"""Shared fixtures: tiny BERT checkpoints built and briefly trained here, loaded by the real service."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

WORDS = ("the a is of and to in was as he she man woman worked nurse doctor paris capital city france "
         "berlin germany rome italy good bad great terrible movie film loved hated it this i very not "
         "happy sad day rain sun sky blue today".split())
MLM_SENTENCES = [
    "paris is the capital of france.",
    "berlin is the capital of germany.",
    "rome is the capital of italy.",
    "the sky is blue today.",
]
SENTIMENT_EXAMPLES = [
    ("i loved this movie", 1), ("a great film", 1), ("this is very good", 1), ("happy day", 1),
    ("i hated this movie", 0), ("a terrible film", 0), ("this is very bad", 0), ("sad day", 0),
]


@pytest.fixture(scope="session", autouse=True)
def _hf_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["HF_HOME"] = str(tmp_path_factory.mktemp("hf_home"))


@pytest.fixture(scope="session")
def tiny_mlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BertForPreTraining trained for a few steps on capital-city sentences."""
    from benchmarks.modelfactory import make_checkpoint, train_briefly

    out = make_checkpoint(tmp_path_factory.mktemp("tiny_mlm"), "pretraining", "tiny", WORDS, seed=0)
    return train_briefly(out, "pretraining", MLM_SENTENCES, steps=150, seed=0)


@pytest.fixture(scope="session")
def tiny_clf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny sentiment classifier trained for a few steps on eight labelled phrases."""
    from benchmarks.modelfactory import make_checkpoint, train_briefly

    out = make_checkpoint(tmp_path_factory.mktemp("tiny_clf"), "classifier", "tiny", WORDS, seed=1)
    return train_briefly(out, "classifier", SENTIMENT_EXAMPLES, steps=80, seed=1)


@pytest.fixture(scope="session")
def other_mlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second tiny masked LM with the same vocabulary, untrained (other answers: the Compare models view)."""
    from benchmarks.modelfactory import make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp("other") / "other-mlm", "pretraining", "tiny", WORDS, seed=5)


@pytest.fixture(scope="session")
def other_clf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second tiny classifier with the same vocabulary, untrained."""
    from benchmarks.modelfactory import make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp("other") / "other-clf", "classifier", "tiny", WORDS, seed=6)


@pytest.fixture(scope="session")
def settings(tiny_mlm_dir: Path, tiny_clf_dir: Path):
    from bertdemo.config import load_settings

    return load_settings(env={}, mlm_model=str(tiny_mlm_dir), sentiment_model=str(tiny_clf_dir))


@pytest.fixture(scope="session")
def service(settings):
    from bertdemo.service import ModelService

    return ModelService(settings)


@pytest.fixture()
def model_env(tiny_mlm_dir: Path, tiny_clf_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment that points the CLI / app at the tiny models."""
    monkeypatch.setenv("BERTDEMO_MLM_MODEL", str(tiny_mlm_dir))
    monkeypatch.setenv("BERTDEMO_SENTIMENT_MODEL", str(tiny_clf_dir))
    return {**os.environ}
