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


def test_masks_on_both_sides_of_the_bar_compare_the_fills():
    r = route("The man worked as a [MASK]. || The woman worked as a <mask>.")
    assert (r.kind, r.text, r.second) == ("fill_pair", "The man worked as a [MASK].", "The woman worked as a <mask>.")
    assert "compare" in r.note  # the answer says which route was taken
    one = route("Paris is the [MASK] of France. || It is big.")
    assert one.kind == "nsp" and "next-sentence" in one.note
    assert route("I went out. || It rained.").note == ""  # plain syntax: nothing to explain


@pytest.mark.parametrize("text", ["我喜欢这部电影", "Этот фильм был ужасен", "Esta película es muy buena y la recomiendo",
                                  "Das ist ein sehr guter Film und ich mag ihn", "Le [MASK] est sur la table."])
def test_non_english_text_is_flagged(text):
    from bertdemo.ui.chat import warnings_for

    warning = " ".join(warnings_for(route(text)))
    assert "does not look like English" in warning and "English only" in warning


@pytest.mark.parametrize("text", ["This film was a delight.", "Paris is the [MASK] of France.", "Café au lait is nice",
                                  "The man worked as a [MASK].", "ok", "I loved Amélie and La La Land"])
def test_english_text_is_not_flagged(text):
    from bertdemo.ui.chat import warnings_for

    assert not any("English" in w for w in warnings_for(route(text)))


def test_refusals_name_the_message_and_hint_help_once():
    from bertdemo.errors import InputError
    from bertdemo.ui.chat import error_reply

    reply = error_reply(InputError("is 5,199 characters long; at most 5,000 are allowed", field="texts[0]"))
    assert reply.startswith("Sorry: Your message is 5,199 characters long") and "texts" not in reply
    assert reply.count("/help") == 1
    with pytest.raises(InputError) as info:
        route("   ")
    assert error_reply(info.value).count("/help") == 1
