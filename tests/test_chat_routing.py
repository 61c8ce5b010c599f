"""Chat routing without a model: greetings and questions about the app get the help, text gets sentiment."""

from __future__ import annotations

import pytest

from bertdemo.ui.chat import HELP, route


@pytest.mark.parametrize("message", ["Hello there!", "hi", "Hey", "Good morning", "What can you do?",
                                     "hi, what can you do", "How does this work?", "who are you?", "help"])
def test_greetings_and_capability_questions_get_help(message):
    assert route(message).kind == "help"


@pytest.mark.parametrize("message", ["Hello, this movie was great and I loved every minute of it",
                                     "The service was slow and the food was cold.", "What a wonderful film!"])
def test_other_text_still_gets_sentiment(message):
    assert route(message).kind == "sentiment"


def test_forced_routes_win():
    assert route("/sentiment hello").kind == "sentiment"
    assert route("Hello [MASK] world").kind == "fill"
    assert route("Hi. || What can you do?").kind == "nsp"
    assert "/sentiment" in HELP
