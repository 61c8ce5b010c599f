"""The command line as a user runs it: real subprocesses for the shapes, in-process for the errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bertdemo.cli import main


def _run(args: list[str], env: dict[str, str], stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bertdemo", *args], env=env, capture_output=True,
                          input=stdin, timeout=120, check=False)


def test_fill_json_shape_via_env_vars(model_env: dict[str, str]) -> None:
    proc = _run(["fill", "[MASK] is the [MASK] of france.", "--top-k", "3", "--json"], model_env)
    assert proc.returncode == 0, proc.stderr.decode()
    data = json.loads(proc.stdout)
    assert len(data["predictions"]) == 2
    for preds in data["predictions"]:
        assert len(preds) == 3
        assert set(preds[0]) >= {"token", "score", "sequence"}
    assert data["predictions"][1][0]["token"] == "capital"
    assert proc.stderr.decode().strip() == ""


def test_model_flag_overrides_env(tiny_mlm_dir: Path, model_env: dict[str, str], tmp_path: Path) -> None:
    env = {**model_env, "BERTDEMO_MLM_MODEL": str(tmp_path / "missing")}
    proc = _run(["fill", "paris is the [MASK] of france.", "--json", "--mlm-model", str(tiny_mlm_dir)], env)
    assert proc.returncode == 0, proc.stderr.decode()
    bad = _run(["fill", "paris is the [MASK] of france."], env)
    assert bad.returncode == 2
    err = bad.stderr.decode()
    assert "missing" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_nsp_and_ranking_json(model_env: dict[str, str], capsys: pytest.CaptureFixture) -> None:
    assert main(["nsp", "paris is the capital of france.", "the sky is blue.", "--json"]) == 0
    p = json.loads(capsys.readouterr().out)["is_next"]
    assert 0.0 <= p <= 1.0
    assert main(["nsp", "paris is nice.", "--candidates", "the sky is blue.", "a sad day", "--json"]) == 0
    ranking = json.loads(capsys.readouterr().out)["ranking"]
    assert [r["rank"] for r in ranking] == [1, 2]
    assert ranking[0]["is_next"] >= ranking[1]["is_next"]
    assert main(["nsp", "paris is nice."]) == 2
    assert "second sentence" in capsys.readouterr().err


def test_sentiment_json_and_table(model_env: dict[str, str], capsys: pytest.CaptureFixture) -> None:
    assert main(["sentiment", "i loved this movie", "a terrible film", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["label"] for d in data] == ["positive", "negative"]
    assert set(data[0]) >= {"label", "score", "scores"}
    assert main(["sentiment", "i loved this movie"]) == 0
    out = capsys.readouterr().out
    assert "positive" in out and "i loved this movie" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["fill", "no mask in this text"],
        ["fill", ""],
        ["fill", "a [MASK]", "--top-k", "0"],
        ["fill", "a [MASK]", "--top-k", "nan"],
        ["fill", "a [MASK]", "--targets", "zzzzqqq"],
        ["fill", "[MASK] " * 9],
        ["sentiment", "   "],
        ["nsp", "a", "b", "--candidates", "c"],
        ["fill", "a [MASK]", "--device", "quantum"],
    ],
)
def test_bad_input_exits_2_with_one_line(model_env: dict[str, str], capsys: pytest.CaptureFixture, argv) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("bertdemo ") and "error:" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2


def test_invalid_utf8_argument(model_env: dict[str, str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "bertdemo", "sentiment", b"caf\xe9 \xff"], env=model_env,
                          capture_output=True, timeout=120, check=False)
    assert proc.returncode in (0, 2)
    assert b"Traceback" not in proc.stderr


@pytest.mark.parametrize("argv, needle", [
    (["fill", "no mask here"], "[MASK]"),
    (["fill", "a [MASK]", "--top-k", "0"], "top_k"),
    (["nsp", "a", ""], "second"),
    (["nsp", "a"], "second sentence"),
    (["sentiment", "ok", " "], "text 2"),
])
def test_bad_input_is_refused_before_any_model_loads(model_env: dict[str, str], tmp_path: Path, argv, needle) -> None:
    """Models that cannot load: the answer is still about the input (checked first), and it comes at once."""
    import time

    env = {**model_env, "BERTDEMO_MLM_MODEL": str(tmp_path / "missing-mlm"),
           "BERTDEMO_SENTIMENT_MODEL": str(tmp_path / "missing-clf")}
    t0 = time.perf_counter()
    proc = _run(argv, env)
    took = time.perf_counter() - t0
    err = proc.stderr.decode()
    assert proc.returncode == 2 and needle in err and "missing" not in err, err
    assert "texts[" not in err
    assert took < 3.0, took  # ~0.3 s here (README); a model load takes seconds
