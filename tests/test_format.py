"""The one number policy and the formatters the tabs and the chat share (no model needed)."""

from __future__ import annotations

import pytest

from bertdemo.ui import format as fmt


@pytest.mark.parametrize(("p", "shown"), [
    (0.801234, "80.1 %"), (0.0004, "<0.1 %"), (0.001, "0.1 %"), (0.9996, ">99.9 %"), (1.0, "100 %"), (0.0, "0 %"),
    (0.05, "5.0 %"), (float("nan"), "n/a"),
])
def test_percent_policy(p, shown):
    assert fmt.pct(p).replace("\u00a0", " ") == shown
    if shown != "n/a":
        assert "\u00a0%" in fmt.pct(p)  # never a "%" alone on a wrapped line


def test_ranking_rows_are_percent():
    from bertdemo.tasks.next_sentence import RankedCandidate

    rows = fmt.ranking_rows([RankedCandidate(1, "a", 0.9907, 0), RankedCandidate(2, "b", 0.00002, 1)])
    assert [r[2] for r in rows] == ["99.1\u00a0%", "<0.1\u00a0%"]


def test_scored_csv_keeps_every_column_and_row():
    from bertdemo.tasks.sentiment import SentimentResult

    res = SentimentResult("positive", 0.9, {"negative": 0.1, "positive": 0.9}, False)
    header, rows = fmt.scores_rows_keeping(["id", "text"], [{"id": "1", "text": "good"}, {"id": "2", "text": ""}],
                                           [res, None])
    assert header == ["id", "text", "label", "score", "p_negative", "p_positive"]
    assert rows == [["1", "good", "positive", 0.9, 0.1, 0.9], ["2", "", "", "", "", ""]]
    assert fmt.result_columns(["text", "Label"], ["neg"])[0] == "predicted_label"  # never overwrites an input column


def test_csv_report_lists_skipped_lines():
    note = fmt.csv_report("f.csv", 5, [(3, "empty text"), (9, "empty text")])
    assert "Scored 5 rows" in note and "Skipped 2 rows" in note and "line 3" in note and "line 9" in note
    many = fmt.csv_report("f.csv", 1, [(i, "empty text") for i in range(2, 30)], shown=3)
    assert "and 25 more" in many


def test_method_disagreement_on_most_words_says_unreliable():
    from bertdemo.tasks.attribution import Explanation

    def expl(method, signs):
        words = ["He", "is", "a", "good", "doctor"]
        return Explanation("positive", 0.9, {"negative": 0.1, "positive": 0.9}, False, method=method,
                           attributions=[(w, s * (i + 1)) for i, (w, s) in enumerate(zip(words, signs))])

    ig = expl("integrated_gradients", [1, 1, 1, 1, 1])
    everywhere = fmt.method_disagreement(ig, expl("gradient_x_input", [-1, -1, -1, -1, -1]))
    assert "unreliable" in everywhere and "disagree on most words" in everywhere
    assert "`He`" not in everywhere and "`doctor`" not in everywhere  # no list of every word
    few = fmt.method_disagreement(ig, expl("gradient_x_input", [1, 1, 1, -1, 1]))
    assert "`good`" in few and "unreliable" not in few
    assert fmt.method_disagreement(ig, expl("gradient_x_input", [1, 1, 1, 1, 1])) == ""
