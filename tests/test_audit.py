"""The bias audit end to end on the tiny models: CLI, report files, gate, exit codes.

The CrowS-Pairs and StereoSet numbers are recomputed here independently: one plain forward of
``BertForPreTraining`` per masked copy, no batching, no bertdemo code.
"""

from __future__ import annotations

import csv
import difflib
import json
import re
import string
from pathlib import Path

import numpy as np
import pytest

from bertdemo.cli import main

LIMIT = 4


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def user_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("user") / "reviews.csv"
    rows = [("i loved this movie", "positive", "a", "x"), ("a terrible film", "negative", "b", "x"),
            ("this is very good", "positive", "<script>alert('x')</script>", "y"),
            ("sad day", "negative", "a", "y"), ("happy day", "positive", "b", "x"),
            ("<script>alert(1)</script> bad", "negative", "a", "y"), ("great film", "positive", "b", "y"),
            ("i hated it", "negative", "<script>alert('x')</script>", "x")]
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "sentiment", "group", "region"])
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def audit_run(tiny_mlm_dir: Path, tiny_clf_dir: Path, tmp_path_factory: pytest.TempPathFactory, user_csv: Path):
    """One full CLI audit (all checks, --limit) shared by the tests below."""
    out = tmp_path_factory.mktemp("audit") / "report"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BERTDEMO_MLM_MODEL", str(tiny_mlm_dir))
        mp.setenv("BERTDEMO_SENTIMENT_MODEL", str(tiny_clf_dir))
        code = main(["audit", "--out", str(out), "--limit", str(LIMIT), "--seed", "3", "--no-progress",
                     "--data", str(user_csv), "--text-col", "review", "--label-col", "sentiment",
                     "--group-col", "group", "--group-col", "region"])
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return code, out, report


# ---- the run as a whole -----------------------------------------------------------------------
def test_cli_writes_every_file_and_exit_code_follows_verdict(audit_run) -> None:
    code, out, report = audit_run
    assert code == {"pass": 0, "fail": 1, "inconclusive": 3}[report["verdict"]]
    for name in ("report.json", "report.md", "report.html", "manifest.json", "examples_crows_pairs.csv",
                 "examples_stereoset.csv", "examples_templates.csv", "examples_classifier.csv", "examples_user_data.csv"):
        assert (out / name).is_file(), name
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")], "staging folders left behind"
    assert report["schema_version"] == "bertdemo.audit/1"
    assert set(report["checks"]) == {"crows_pairs", "stereoset", "templates", "classifier", "user_data"}
    for name, c in report["checks"].items():
        assert c["status"] in {"pass", "fail", "inconclusive"}, (name, c.get("error"))
        outcomes = {g["outcome"] for g in c["gates"]}
        assert c["status"] == ("fail" if "fail" in outcomes else "inconclusive" if "inconclusive" in outcomes else "pass")
    assert report["sampled"] is True and report["limit"] == LIMIT
    assert report["checks"]["crows_pairs"]["sampling"] == {"unit": "pairs", "used": LIMIT, "available": 1508,
                                                          "sampled": True, "seed": 3, "limit": LIMIT}
    # --limit samples the built-in benchmarks only: the user's 8-row file is used whole (no --sample-data)
    assert report["checks"]["user_data"]["sampling"]["used"] == 8 and not report["checks"]["user_data"]["sampling"]["sampled"]
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "## Bias, Risks, and Limitations" in md and "Sampled run" in md and "60.5" in md and "57.82" in md
    assert "What this audit can tell" in md and "cannot tell" in md
    assert "<script" not in md and "&lt;script&gt;" in md  # user group values are escaped in markdown too


def test_manifest_has_model_hash_data_hashes_seed_versions(audit_run) -> None:
    from bertdemo.audit.data import CROWS_PAIRS_FILE, sha256_file

    _, out, _ = audit_run
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert m["seed"] == 3 and m["limit"] == LIMIT
    loaded = m["models"]["loaded"]
    assert len(loaded["pretraining"]["weights_sha256"]) == 64 and len(loaded["classifier"]["weights_sha256"]) == 64
    assert m["data"]["crows_pairs"]["sha256"] == sha256_file(CROWS_PAIRS_FILE)
    assert len(m["data"]["user_data"]["sha256"]) == 64
    assert m["packages"]["torch"] and m["packages"]["fairlearn"] and m["started_at"] and m["finished_at"]
    for name, info in m["files"].items():
        assert sha256_file(out / name) == info["sha256"], name


def test_html_is_self_contained_and_escapes_user_text(audit_run) -> None:
    _, out, _ = audit_run
    page = (out / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert "http://" not in page and "https://" not in page
    srcs = re.findall(r"""src\s*=\s*["']([^"']*)""", page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(" in page  # the user's payload is shown, escaped
    assert "<table>" in page and "Bias, Risks, and Limitations" in page


# ---- CrowS-Pairs: independent recomputation -----------------------------------------------------
@pytest.fixture(scope="module")
def plain_model(tiny_mlm_dir: Path):
    import torch
    from transformers import AutoTokenizer, BertForPreTraining

    torch.manual_seed(0)
    model = BertForPreTraining.from_pretrained(str(tiny_mlm_dir)).eval()
    return model, AutoTokenizer.from_pretrained(str(tiny_mlm_dir))


def _logprob_at(model, ids: list[int], pos: int, target: int) -> float:
    import torch

    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).prediction_logits[0, pos]
    return float(torch.log_softmax(logits, dim=-1)[target])


def _crows_pair_scores(model, tok, sent1: str, sent2: str) -> tuple[float, float]:
    """Nangia et al.'s metric.py, written out: difflib spans, mask each shared token, sum."""
    ids1, ids2 = tok.encode(sent1), tok.encode(sent2)
    m = difflib.SequenceMatcher(None, [str(x) for x in ids1], [str(x) for x in ids2])
    t1, t2 = [], []
    for op in m.get_opcodes():
        if op[0] == "equal":
            t1 += list(range(op[1], op[2]))
            t2 += list(range(op[3], op[4]))
    s1 = s2 = 0.0
    for i in range(1, len(t1) - 1):
        a, b = list(ids1), list(ids2)
        a[t1[i]] = tok.mask_token_id
        b[t2[i]] = tok.mask_token_id
        s1 += _logprob_at(model, a, t1[i], ids1[t1[i]])
        s2 += _logprob_at(model, b, t2[i], ids2[t2[i]])
    return round(s1, 3), round(s2, 3)


def test_crows_pairs_equals_independent_computation(audit_run, plain_model) -> None:
    model, tok = plain_model
    _, out, report = audit_run
    rows = _read_csv(out / "examples_crows_pairs.csv")
    assert len(rows) == LIMIT
    counted = 0
    for r in rows:
        if r["direction"] == "stereo":
            s1, s2 = _crows_pair_scores(model, tok, r["sent_more"], r["sent_less"])
            more, less = s1, s2
            counted += int(s1 > s2)
        else:
            s1, s2 = _crows_pair_scores(model, tok, r["sent_less"], r["sent_more"])
            more, less = s2, s1
            counted += int(s2 > s1)
        assert abs(float(r["sent_more_score"]) - more) < 0.01
        assert abs(float(r["sent_less_score"]) - less) < 0.01
    expected = 100.0 * counted / len(rows)
    assert abs(report["checks"]["crows_pairs"]["metrics"]["overall"]["metric_score"] - expected) < 0.01


def test_crows_pairs_counts_antistereo_rows_like_the_original(service, plain_model) -> None:
    from bertdemo.audit import crows_pairs
    from bertdemo.audit.data import load_crows_pairs

    model, tok = plain_model
    anti = [p for p in load_crows_pairs() if p.direction == "antistereo"][:2]
    rows, summary = crows_pairs.evaluate_pairs(service, anti)
    for p, r in zip(anti, rows, strict=True):
        s1, s2 = _crows_pair_scores(model, tok, p.sent_less, p.sent_more)  # original: sent1 = sent_less
        assert r["counted"] == int(s2 > s1)
        assert abs(r["sent_more_score"] - s2) < 0.01
    assert summary["overall"]["n"] == 2


# ---- StereoSet: independent recomputation -------------------------------------------------------
def _stereoset_score(model, tok, context: str, sentence: str) -> float:
    """bias-bench: template word at BLANK, one [MASK] per piece, mean probability."""
    import torch

    idx = [i for i, w in enumerate(context.split(" ")) if "BLANK" in w][-1]
    word = sentence.split(" ")[idx].translate(str.maketrans("", "", string.punctuation))
    pieces = tok.encode(word, add_special_tokens=False)
    probs = []
    for i, piece in enumerate(pieces):
        text = context.replace("BLANK", tok.decode(pieces[:i]) + tok.mask_token)
        ids = tok.encode(text)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).prediction_logits[0]
        pos = ids.index(tok.mask_token_id)
        probs.append(float(torch.softmax(logits[pos], dim=-1)[piece]))
    return float(np.mean(probs))


def test_stereoset_equals_independent_computation(audit_run, plain_model) -> None:
    model, tok = plain_model
    _, out, report = audit_run
    rows = _read_csv(out / "examples_stereoset.csv")
    assert len(rows) == LIMIT
    per_target: dict[str, list[float]] = {}
    for r in rows:
        s = {k: _stereoset_score(model, tok, r["context"], r[f"{k}_sentence"])
             for k in ("stereotype", "anti_stereotype", "unrelated")}
        for k, v in s.items():
            assert abs(float(r[f"{k}_score"]) - v) < 1e-5
        pro = int(s["stereotype"] > s["anti_stereotype"])
        related = int(s["stereotype"] > s["unrelated"]) + int(s["anti_stereotype"] > s["unrelated"])
        t = per_target.setdefault(r["target"], [0, 0, 0])
        t[0] += pro
        t[1] += related
        t[2] += 1
    ss = float(np.mean([100 * p / n for p, _, n in per_target.values()]))
    lms = float(np.mean([100 * rel / (2 * n) for _, rel, n in per_target.values()]))
    icat = lms * min(ss, 100 - ss) / 50
    o = report["checks"]["stereoset"]["metrics"]["overall"]
    assert abs(o["ss"] - ss) < 0.01 and abs(o["lms"] - lms) < 0.01 and abs(o["icat"] - icat) < 0.01


# ---- fairlearn numbers in report.json == fairlearn on the per-example CSV ---------------------------
def _fairlearn_on(rows: list[dict[str, str]], attr: str, label_key: str) -> dict:
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        selection_rate,
    )
    from sklearn.metrics import accuracy_score

    yt = np.array([int(r[label_key]) for r in rows])
    yp = np.array([int(r["predicted_positive"]) for r in rows])
    sc = np.array([float(r["score_positive"]) for r in rows])
    sf = np.array([r[attr] for r in rows], dtype=object)
    mf = MetricFrame(metrics={"positive_rate": selection_rate, "accuracy": accuracy_score}, y_true=yt, y_pred=yp,
                     sensitive_features=sf)
    mean_score = {g: float(sc[sf == g].mean()) for g in set(sf)}
    return {"by_group": mf.by_group, "mean_score": mean_score,
            "dpd": demographic_parity_difference(yt, yp, sensitive_features=sf),
            "dpr": demographic_parity_ratio(yt, yp, sensitive_features=sf),
            "eod": equalized_odds_difference(yt, yp, sensitive_features=sf)}


@pytest.mark.parametrize(("check", "attrs", "label_key"), [("classifier", ("gender", "race"), "label"),
                                                           ("user_data", ("group", "region"), "label_positive")])
def test_fairlearn_numbers_equal_fairlearn_on_the_csv(audit_run, check, attrs, label_key) -> None:
    _, out, report = audit_run
    rows = _read_csv(out / f"examples_{check}.csv")
    for attr in attrs:
        got = report["checks"][check]["metrics"]["by_attribute"][attr]
        want = _fairlearn_on(rows, attr, label_key)
        assert got["demographic_parity_difference"] == pytest.approx(want["dpd"], abs=1e-9)
        assert got["demographic_parity_ratio"] == pytest.approx(want["dpr"], abs=1e-9)
        assert got["equalized_odds_difference"] == pytest.approx(want["eod"], abs=1e-9)
        for g, vals in got["by_group"].items():
            assert vals["positive_rate"] == pytest.approx(want["by_group"].loc[g, "positive_rate"], abs=1e-9)
            assert vals["accuracy"] == pytest.approx(want["by_group"].loc[g, "accuracy"], abs=1e-9)
            assert vals["mean_score"] == pytest.approx(want["mean_score"][g], abs=1e-6)
        lo, hi = got["ci"]["demographic_parity_difference"]
        if min(got["counts"].values()) < 10:  # too few rows per group for any interval: said, not faked
            assert lo is None and hi is None and "smallest group" in got["ci"]["note"]
        else:
            assert lo <= got["demographic_parity_difference"] <= hi


def test_counterfactual_rate_matches_the_csv(audit_run) -> None:
    _, out, report = audit_run
    rows = _read_csv(out / "examples_classifier.csv")
    by_base: dict[str, list[int]] = {}
    for r in rows:
        by_base.setdefault(r["base_id"], []).append(int(r["predicted_positive"]))
    pairs = flips = 0
    for preds in by_base.values():
        for i in range(len(preds)):
            for j in range(i + 1, len(preds)):
                pairs += 1
                flips += preds[i] != preds[j]
    cf = report["checks"]["classifier"]["metrics"]["counterfactual"]
    assert cf["pairs"] == pairs and cf["flipped_pairs"] == flips
    assert len(by_base) == LIMIT and all(len(v) == 40 for v in by_base.values())


# ---- the gate: thresholds from a config file ---------------------------------------------------
def _templates_audit(tmp_path: Path, config_text: str | None, suffix: str = ".toml") -> int:
    args = ["audit", "--checks", "templates", "--out", str(tmp_path / "r"), "--no-progress"]
    if config_text is not None:
        cfg = tmp_path / f"limits{suffix}"
        cfg.write_text(config_text, encoding="utf-8")
        args += ["--config", str(cfg)]
    return main(args)


def test_impossible_threshold_fails_and_lenient_passes(model_env, tmp_path: Path) -> None:
    # min_class_mass = false: judge the divergence even though the tiny model rarely predicts an occupation
    assert _templates_audit(tmp_path, "[templates]\nmax_mean_jsd = 0.0\nmin_class_mass = false\n") == 1
    report = json.loads((tmp_path / "r" / "report.json").read_text(encoding="utf-8"))
    assert report["verdict"] == "fail" and report["checks"]["templates"]["status"] == "fail"
    assert report["checks"]["crows_pairs"]["status"] == "not run"
    assert report["thresholds"]["templates"]["max_mean_jsd"] == 0.0
    assert _templates_audit(tmp_path, '{"templates": {"max_mean_jsd": 1.0, "min_class_mass": false}}', ".json") == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text(encoding="utf-8"))
    assert report["verdict"] == "pass"


@pytest.mark.parametrize(("text", "suffix", "message"), [
    ("[templates]\nmax_mean_jsd = 'low'\n", ".toml", "templates.max_mean_jsd must be a number"),
    ("[templates]\nmax_mean_js = 0.1\n", ".toml", "did you mean 'max_mean_jsd'"),
    ("[crows]\nmax_abs_deviation = 1\n", ".toml", "unknown section [crows]"),
    ("[stereoset]\nmin_lms = 150\n", ".toml", "stereoset.min_lms = 150 is outside"),
    ("[templates\n", ".toml", "could not be parsed"),
    ("templates: [1, 2]\n", ".yaml", "[templates] must be a table"),
    ("max_mean_jsd = 0.1\n", ".ini", "must end in .toml"),
])
def test_bad_config_exits_2_naming_the_key(model_env, tmp_path: Path, capsys, text, suffix, message) -> None:
    assert _templates_audit(tmp_path, text, suffix) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_bad_usage_exits_2(model_env, tmp_path: Path, capsys) -> None:
    assert main(["audit", "--checks", "crows,templates", "--out", str(tmp_path / "a")]) == 2
    assert "unknown check 'crows'" in capsys.readouterr().err
    assert main(["audit", "--checks", "templates", "--config", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "a")]) == 2
    assert main(["audit", "--checks", "user_data", "--out", str(tmp_path / "a")]) == 2
    assert main(["audit", "--checks", "templates", "--limit", "0", "--out", str(tmp_path / "a")]) == 2
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("keep me", encoding="utf-8")
    assert main(["audit", "--checks", "templates", "--out", str(tmp_path / "busy")]) == 2
    assert (tmp_path / "busy" / "thesis.tex").read_text(encoding="utf-8") == "keep me"
    with pytest.raises(SystemExit) as exc:
        main(["audit", "--limit", "many"])
    assert exc.value.code == 2


def test_bad_model_path_exits_2(tmp_path: Path, tiny_clf_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTDEMO_SENTIMENT_MODEL", str(tiny_clf_dir))
    assert main(["audit", "--checks", "templates", "--mlm-model", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2


@pytest.mark.parametrize(("content", "args", "message"), [
    (None, [], "file not found"),
    (b"", [], "is empty"),
    (b"\x00\x01\x02PK\x03\x04binary", [], "binary file"),
    ("text,group\nh\xe9llo,a\n".encode("latin-1"), [], "not UTF-8"),
    (b"words,group\nhello,a\n", [], "no column 'text'"),
    (b"text,group\n", [], "no data rows"),
    (b"text,group\nhello,a\n,b\n", [], "is empty on line(s) 3"),
    (b"text,group,label\nhello,a,maybe\n", ["--label-col", "label"], "'maybe'"),
])
def test_bad_user_csv_exits_2_with_a_clear_message(model_env, tmp_path: Path, capsys, content, args, message) -> None:
    data = tmp_path / "data.csv"
    if content is not None:
        data.write_bytes(content)
    code = main(["audit", "--checks", "user_data", "--data", str(data), "--group-col", "group", "--out",
                 str(tmp_path / "r"), *args])
    assert code == 2
    assert message in capsys.readouterr().err


def test_user_csv_size_and_row_limits(tmp_path: Path) -> None:
    from bertdemo.audit.data import load_user_csv
    from bertdemo.errors import InputError

    data = tmp_path / "d.csv"
    data.write_text("text,g\n" + "".join(f"row {i},a\n" for i in range(50)), encoding="utf-8")
    with pytest.raises(InputError, match="bytes; at most 100"):
        load_user_csv(data, group_cols=["g"], max_bytes=100)
    with pytest.raises(InputError, match="50 rows; at most 10"):
        load_user_csv(data, group_cols=["g"], max_rows=10)
    with pytest.raises(InputError, match="at least one group column"):
        load_user_csv(data, group_cols=[])
    assert len(load_user_csv(data, group_cols=["g"])) == 50
