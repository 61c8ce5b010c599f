"""Compare models on the tiny checkpoints: the service holds both, answers differ only when the models do,
the app's endpoint and the chat's /compare show both, and nothing but a configured name is accepted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from test_app_api import assert_clear_error, start  # shared, not copied

from bertdemo import compare
from bertdemo.errors import InputError
from bertdemo.models import KIND_CLASSIFIER, KIND_PRETRAINING
from bertdemo.service import ModelService
from bertdemo.ui import format as fmt
from bertdemo.ui.chat import answer_compare, route

QUESTIONS = [(compare.FILL, "paris is the [MASK] of france.", ""), (compare.NSP, "i loved this movie", "it was great"),
             (compare.SENTIMENT, "i loved this movie", "")]


@pytest.fixture(scope="module")
def n(tiny_mlm_dir: Path, tiny_clf_dir: Path) -> dict[str, str]:
    """The names visitors see: the folders' names (the other models are ``other-mlm`` and ``other-clf``)."""
    return {"mlm": tiny_mlm_dir.name, "clf": tiny_clf_dir.name, "other-mlm": "other-mlm", "other-clf": "other-clf"}


@pytest.fixture(scope="module")
def reports(tiny_mlm_dir: Path, tiny_clf_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding one small audit of the main tiny models (none of the other models)."""
    from bertdemo.cli import main

    folder = tmp_path_factory.mktemp("reports")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BERTDEMO_MLM_MODEL", str(tiny_mlm_dir))
        mp.setenv("BERTDEMO_SENTIMENT_MODEL", str(tiny_clf_dir))
        main(["audit", "--out", str(folder / "tiny-audit"), "--checks", "crows_pairs,classifier", "--limit", "4",
              "--no-progress"])
    assert (folder / "tiny-audit" / "report.json").is_file()
    return folder


@pytest.fixture(scope="module")
def cmp_settings(settings: Any, other_mlm_dir: Path, other_clf_dir: Path, reports: Path) -> Any:
    return settings.replace(compare_mlm_model=str(other_mlm_dir), compare_sentiment_model=str(other_clf_dir),
                            audit_reports=str(reports))


@pytest.fixture(scope="module")
def cmp_service(cmp_settings: Any) -> Iterator[ModelService]:
    svc = ModelService(cmp_settings)
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def twice_service(settings: Any, tiny_mlm_dir: Path, tiny_clf_dir: Path) -> Iterator[ModelService]:
    """The same checkpoints configured as the compare models too."""
    svc = ModelService(settings.replace(compare_mlm_model=str(tiny_mlm_dir), compare_sentiment_model=str(tiny_clf_dir)))
    yield svc
    svc.close()


def test_settings_come_from_the_documented_variables(tmp_path: Path) -> None:
    from bertdemo.config import load_settings

    s = load_settings(env={"BERTDEMO_COMPARE_MLM_MODEL": "/m/a", "BERTDEMO_COMPARE_SENTIMENT_MODEL": "/m/b",
                           "BERTDEMO_AUDIT_REPORTS": str(tmp_path)})
    assert (s.compare_mlm_model, s.compare_sentiment_model, s.audit_reports) == ("/m/a", "/m/b", str(tmp_path))
    with pytest.raises(InputError, match=r"audit_reports.*folder of audit reports"):
        load_settings(env={"BERTDEMO_AUDIT_REPORTS": str(tmp_path / "missing")})


# ---- the service -------------------------------------------------------------------------------
@pytest.mark.parametrize(("task", "text", "second"), QUESTIONS)
def test_both_models_answer_and_the_answers_differ(cmp_service: ModelService, n: dict[str, str], task: str, text: str,
                                                  second: str) -> None:
    res = compare.compare(cmp_service, task, text, second)
    kind = "clf" if task == compare.SENTIMENT else "mlm"
    assert [a.model.name for a in res.answers] == [n[kind], n[f"other-{kind}"]]
    first, other = (a.answer.to_dict() for a in res.answers)
    assert first != other  # an untrained model does not answer like the trained one
    for a in res.answers:
        assert a.model.parameters > 1000 and a.model.size_mb > 0 and a.milliseconds > 0
        assert (a.model.precision, a.model.device) == ("fp32", "cpu")
    md = fmt.comparison_markdown(res)
    assert fmt.esc(n[kind]) in md and fmt.esc(n[f"other-{kind}"]) in md
    assert "| **time** |" in md and " ms" in md and " MB" in md


@pytest.mark.parametrize(("task", "text", "second"), QUESTIONS)
def test_the_same_model_twice_answers_identically(twice_service: ModelService, task: str, text: str, second: str) -> None:
    kind = compare.TASKS[task]
    names = twice_service.model_names(kind)
    assert names[1] == f"{names[0]} (compare)"
    res = compare.compare(twice_service, task, text, second)
    first, other = (a.answer.to_dict() for a in res.answers)
    assert first == other and res.same_answer
    assert twice_service.for_model(kind, names[1]).model(kind) is not twice_service.model(kind)  # its own load
    assert "Same answer" in fmt.comparison_markdown(res)


def test_a_kind_without_a_compare_model_is_never_loaded_twice(settings: Any, other_mlm_dir: Path) -> None:
    svc = ModelService(settings.replace(compare_mlm_model=str(other_mlm_dir)))
    try:
        assert compare.tasks_enabled(svc) == [compare.FILL, compare.NSP]
        assert svc.second().model(KIND_CLASSIFIER) is svc.model(KIND_CLASSIFIER)
        with pytest.raises(InputError, match="fill mask, next sentence"):
            compare.compare(svc, compare.SENTIMENT, "i loved it")
        assert "compares models on fill mask, next sentence only" in answer_compare(svc, compare.SENTIMENT, "i loved it")
    finally:
        svc.close()


@pytest.mark.parametrize("name", ["/etc", "../other-mlm", "bert-base-uncased", "", None, ["other-mlm"], "other-clf"])
def test_only_configured_names_are_accepted(cmp_service: ModelService, n: dict[str, str], other_mlm_dir: Path,
                                            name: Any) -> None:
    with pytest.raises(InputError, match=f"one of the models this server offers: {n['mlm']}, other-mlm"):
        compare.compare(cmp_service, compare.FILL, "the [MASK] is blue.", models=[n["mlm"], name])
    with pytest.raises(InputError, match="one of the models"):
        cmp_service.for_model(KIND_PRETRAINING, str(other_mlm_dir))  # its own path is not its name


def test_audit_numbers_belong_to_the_audited_weights_only(cmp_service: ModelService) -> None:
    res = compare.compare(cmp_service, compare.FILL, "the sky is [MASK] today.")
    main, other = (a.model.audit for a in res.answers)
    assert other is None  # the untrained model was never audited
    assert main is not None and main.report == "tiny-audit"
    assert [c.title for c in main.checks] == ["CrowS-Pairs (masked LM)"]  # the classifier's check is not the MLM's
    assert "pairs prefer" in main.checks[0].headline
    clf = compare.compare(cmp_service, compare.SENTIMENT, "a great film").answers[0].model.audit
    assert clf is not None and [c.title for c in clf.checks] == ["Classifier group fairness (sentiment, EEC-style names)"]
    assert "no audit report of these weights" in fmt.comparison_markdown(res)


def test_without_a_second_model_the_feature_is_off(service: ModelService) -> None:
    from bertdemo.ui.tabs.about import about_markdown

    assert compare.tasks_enabled(service) == []
    assert answer_compare(service, compare.FILL, "the [MASK] is blue.") == compare.ENABLE
    about = about_markdown(service, service.settings)
    assert "BERTDEMO_COMPARE_MLM_MODEL" in about and "BERTDEMO_COMPARE_SENTIMENT_MODEL" in about


def test_about_lists_the_compared_models(cmp_service: ModelService, n: dict[str, str]) -> None:
    from bertdemo.ui.tabs.about import about_markdown

    cmp_service.warm_up()
    about = about_markdown(cmp_service, cmp_service.settings)
    for role, name in (("fill mask + next sentence (compare)", "other-mlm"), ("sentiment (compare)", "other-clf")):
        assert f"| {fmt.esc(role)} | {fmt.esc(name)} |" in about
    assert "Compare models" in about and "BERTDEMO_COMPARE_MLM_MODEL" in about


# ---- chat --------------------------------------------------------------------------------------
def test_chat_compare_routes_by_the_shape_of_the_text() -> None:
    assert (route("/compare Paris is the [MASK] of France.").task, route("/compare a || b").task,
            route("/compare what a film").task) == (compare.FILL, compare.NSP, compare.SENTIMENT)
    assert route("/compare I went out. || It rained.").second == "It rained."
    with pytest.raises(InputError, match="needs text after /compare"):
        route("/compare   ")


def test_chat_compare_answers_with_both_models(cmp_service: ModelService, n: dict[str, str]) -> None:
    md = answer_compare(cmp_service, compare.NSP, "i loved this movie", "it was great")
    assert fmt.esc(n["mlm"]) in md and fmt.esc("other-mlm") in md and fmt.esc("P(B follows A)") in md


# ---- the app over HTTP -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client(cmp_settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    from bertdemo.ui import build_app

    app_settings = cmp_settings.replace(output_dir=str(tmp_path_factory.mktemp("cmp_app")))
    demo = build_app(app_settings, service=ModelService(app_settings))
    url = start(demo, app_settings)
    yield Client(url, verbose=False)
    demo.close()


def test_compare_endpoint_returns_both_models(client: Client, n: dict[str, str]) -> None:
    md, data = client.predict(compare.FILL, "paris is the [MASK] of france.", "", n["mlm"], "other-mlm",
                              api_name="/compare_models")
    assert fmt.esc(n["mlm"]) in md and fmt.esc("other-mlm") in md and "| **time** |" in md
    assert [a["model"]["name"] for a in data["answers"]] == [n["mlm"], "other-mlm"]
    assert data["answers"][0]["model"]["audit"]["verdict"] in {"pass", "inconclusive", "fail"}
    assert data["answers"][1]["model"]["audit"] is None
    md, data = client.predict(compare.SENTIMENT, "i hated this movie", "", "other-clf", n["clf"],
                              api_name="/compare_models")
    assert [a["model"]["name"] for a in data["answers"]] == ["other-clf", n["clf"]]


@pytest.mark.parametrize(("task", "a", "b", "expect"), [
    (compare.FILL, "mlm", "/etc/passwd", ("model", "one of the models this server offers")),
    (compare.FILL, "clf", "other-mlm", ("model", "one of the models")),  # a classifier cannot fill a mask
    (compare.SENTIMENT, "clf", "~/models/x", ("model", "other-clf")),
    ("attention", "mlm", "other-mlm", ()),  # not a task of the compare view (gradio's own choice check)
])
def test_compare_endpoint_refuses_other_names(client: Client, n: dict[str, str], task: str, a: str, b: str,
                                              expect: tuple[str, ...]) -> None:
    with pytest.raises(AppError) as info:
        client.predict(task, "the [MASK] is blue.", "", n[a], b, api_name="/compare_models")
    assert_clear_error(info.value, *expect)


def test_chat_compare_over_http(client: Client, n: dict[str, str]) -> None:
    history, _ = client.predict("/compare i loved this movie", [], api_name="/chat")
    answer = history[-1]["content"][0]["text"]
    assert fmt.esc(n["clf"]) in answer and fmt.esc("other-clf") in answer and "label" in answer


def test_times_are_fair_to_the_first_model() -> None:
    """Each model's first call is slow (a warm-up effect, as seen: 370 ms vs 36 ms): it is never the one timed."""
    import time
    from types import SimpleNamespace

    from bertdemo import compare as cmp
    from bertdemo.tasks.sentiment import SentimentResult

    class Fake:
        calls = 0

        def model(self, kind: str) -> Any:
            return SimpleNamespace(model=None, num_parameters=10, precision="fp32", device="cpu", kind=kind,
                                   weights_sha256="")

        def sentiment(self, texts: list[str]) -> list[SentimentResult]:
            self.calls += 1
            time.sleep(0.3 if self.calls == 1 else 0.02)
            return [SentimentResult("positive", 0.9, {"negative": 0.1, "positive": 0.9}, False)]

    models = {"a": Fake(), "b": Fake()}
    service = SimpleNamespace(model_names=lambda kind: list(models), for_model=lambda kind, n: models[n],
                              settings=SimpleNamespace(audit_reports=""))
    res = cmp.compare(service, cmp.SENTIMENT, "good")
    assert all(x.milliseconds < 150 for x in res.answers), [x.milliseconds for x in res.answers]
    assert all(m.calls == 1 + cmp.TIMED_ROUNDS for m in models.values())  # cheap: a warm-up and the timed rounds
