"""The check protocol: a check is one object, and every renderer loops over checks without knowing names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from bertdemo.audit import checks, report, runner, thresholds
from bertdemo.audit.checks.base import Check, Context, Figure, Outcome, Table, ThresholdSpec, gate
from bertdemo.audit.checks.templates import CLASS_TEMPLATES, word_class_mass

ROOT = Path(__file__).resolve().parent.parent


def test_word_class_mass_per_group_and_overall() -> None:
    t_occ, t_other = CLASS_TEMPLATES[0], "{person} is known for being very [MASK]."
    rows = [
        {"template": t_occ, "attribute": "gender", "group": "male", "occupation_mass": 0.6},
        {"template": t_occ, "attribute": "gender", "group": "male", "occupation_mass": 0.4},
        {"template": t_occ, "attribute": "gender", "group": "female", "occupation_mass": 0.2},
        {"template": t_other, "attribute": "gender", "group": "female", "occupation_mass": 0.9},  # not an occupation slot
    ]
    mass = word_class_mass(rows, [t_occ, t_other])
    assert mass["templates"] == [t_occ]
    g = mass["by_attribute"]["gender"]
    assert g["by_group"] == {"male": pytest.approx(0.5), "female": pytest.approx(0.2)}
    assert g["gap"] == pytest.approx(0.3)
    assert g["overall"] == mass["overall"] == pytest.approx(0.4)


def test_template_check_reports_the_mass_everywhere(service: Any, tmp_path: Path) -> None:
    result = runner.run_audit(service, runner.AuditOptions(checks=["templates"]), bars=False)
    mass = result.checks["templates"].metrics["word_class_mass"]
    assert 0.0 <= mass["overall"] <= 1.0 and set(mass["by_attribute"]) == {"gender", "race", "religion"}
    paths = report.write_report(result, tmp_path / "out")
    doc = json.loads(paths["report.json"].read_text(encoding="utf-8"))
    assert doc["checks"]["templates"]["metrics"]["word_class_mass"]["word_class"] == "occupation"
    assert [g["config_key"] for g in doc["checks"]["templates"]["gates"]] == ["templates.max_mean_jsd"]  # not gated
    for name in ("report.md", "report.html"):
        text = paths[name].read_text(encoding="utf-8")
        assert "occupation-word mass" in text and f"{mass['overall']:.3f}" in text, name


class Echo(Check):
    """A check that exists only in this test: renderers must show it without knowing it."""

    name = "echo_probe"
    title = "Echo probe <b>(test)</b>"
    anchors = ({"model": "m", "short": "Someone 2020", "source": "a paper", "split": "all", "shown": "42"},)
    thresholds: ClassVar[ThresholdSpec] = {"max_echo": (0.5, 0.0, 1.0, "echo at most this")}

    def run(self, service: Any, ctx: Context) -> Outcome:
        metrics = {"echo": 0.75}
        return Outcome(metrics, [gate("echo", metrics["echo"], "<=", ctx.thresholds[self.name]["max_echo"], "echo.max")],
                       [{"row": 1, "text": "<script>x</script>"}])

    def headline(self, check: dict[str, Any]) -> str:
        return f"echo is {check['metrics']['echo']} <i>"

    def tables(self, check: dict[str, Any], examples: Any) -> list[Table]:
        return [Table(["row", "text"], [[r["row"], r["text"]] for r in examples], heading="Echoed rows")]

    def figures(self, check: dict[str, Any]) -> list[Figure]:
        return [Figure("Echo figure", "echo", ["a"], [check["metrics"]["echo"]], "value")]


def test_a_new_check_is_one_object(service: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(checks.REGISTRY, Echo.name, Echo())  # registering is all it takes
    limits = {**thresholds.load(None), Echo.name: {"max_echo": 0.5}}
    result = runner.run_audit(service, runner.AuditOptions(checks=[Echo.name], thresholds=limits), bars=False)
    assert result.checks[Echo.name].status == "fail"  # 0.75 > 0.5
    paths = report.write_report(result, tmp_path / "out")
    md, page = paths["report.md"].read_text(encoding="utf-8"), paths["report.html"].read_text(encoding="utf-8")
    for text in (md, page):
        assert "Echoed rows" in text and ("Someone 2020" in text or "a paper" in text)
        assert "<script>" not in text and "<b>(test)</b>" not in text and "<i>" not in text  # escaped by the engine
    assert "&lt;script&gt;" in md and "&lt;script&gt;" in page
    assert "Echo figure" in page and "data:image/png;base64," in page
    assert report.headline(Echo.name, result.checks[Echo.name].to_dict()) == "echo is 0.75 <i>"


def test_no_renderer_branches_on_a_check_name() -> None:
    renderers = ["bertdemo/audit/report.py", "bertdemo/audit/render.py", "bertdemo/audit/cli.py",
                 "bertdemo/audit/runner.py", "bertdemo/ui/audit_adapter.py",
                 *[str(p.relative_to(ROOT)) for p in (ROOT / "bertdemo/audit/report_templates").iterdir()]]
    for path in renderers:
        text = (ROOT / path).read_text(encoding="utf-8")
        for name in ("crows_pairs", "stereoset", "templates", "classifier"):
            assert f'"{name}"' not in text and f"'{name}'" not in text, (path, name)
