"""The Chat tab (landing tab): one box for every capability, routed by :mod:`bertdemo.ui.chat`."""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from bertdemo.errors import BertDemoError
from bertdemo.ui import chat
from bertdemo.ui.common import INTERNAL_ERROR, AppContext
from bertdemo.ui.format import esc

log = logging.getLogger(__name__)

SHOWN_CHARS = 2000  # longest user message echoed back into the chat
EXAMPLES = ["Paris is the [MASK] of France.", "The man worked as a [MASK].", "I went to the bakery. || They had no bread left.",
            "This film was a delight from start to finish.", "/help"]


class ChatTab:
    def __init__(self, ctx: AppContext, audit: Any) -> None:
        self.ctx = ctx
        self.audit = audit  # the audit tab answers /audit

    def reply(self, message: Any, request: gr.Request | None = None) -> list[Any]:
        """Assistant messages (Markdown strings or file dicts) for one user message."""
        r = chat.route(message)
        svc = self.ctx.service
        answers = {
            "help": lambda: [chat.HELP],
            "fill": lambda: [chat.answer_fill(svc, r.text)],
            "fill_pair": lambda: [chat.answer_fill_pair(svc, r.text, r.second)],
            "nsp": lambda: [chat.answer_nsp(svc, r.text, r.second)],
            "rank": lambda: [chat.answer_rank(svc, r.text, r.candidates)],
            "audit": lambda: self.audit.quick(request),
            "sentiment": lambda: [chat.answer_sentiment(svc, r.text)],
        }
        replies = answers[r.kind]()
        before = chat.warnings_for(r)
        if before and replies and isinstance(replies[0], str):
            replies[0] = "\n\n".join([*before, replies[0]])
        return replies

    def chat(self, message: Any, history: Any, request: gr.Request | None = None) -> tuple[list[dict[str, Any]], str]:
        history = list(history or []) if isinstance(history, (list, tuple)) else []
        if message is None or (isinstance(message, str) and not message.strip()):
            # nothing typed: one short nudge, no empty bubble, and not repeated on every Enter
            last = history[-1] if history else None
            if not (isinstance(last, dict) and chat.EMPTY_REPLY in str(last.get("content"))):
                history.append({"role": "assistant", "content": chat.EMPTY_REPLY})
            return history, ""
        shown = ""
        if isinstance(message, str):
            shown = esc(message if len(message) <= SHOWN_CHARS else message[:SHOWN_CHARS] + " ...")
        try:
            replies = self.reply(message, request)
        except BertDemoError as err:
            replies = [chat.error_reply(err)]
        except Exception as err:
            log.error("internal error in chat: %s", type(err).__name__)
            log.debug("traceback", exc_info=True)
            replies = [INTERNAL_ERROR]
        history.append({"role": "user", "content": shown or "(not text)"})
        history.extend({"role": "assistant", "content": m} for m in replies)
        return history, ""

    def build(self) -> gr.Blocks:
        with gr.Blocks(analytics_enabled=False) as tab:
            # each message its own bubble (a nudge after an answer must not read as part of that answer);
            # no floating label over the first message (the tab is named Chat)
            bot = gr.Chatbot(elem_id="chat-bot", label="Chat with BERT", show_label=False, height=460, layout="bubble",
                             placeholder=chat.HELP, feedback_options=None, buttons=["copy"],
                             group_consecutive_messages=False)
            with gr.Row():
                msg = gr.Textbox(elem_id="chat-input", show_label=False, scale=5, autofocus=True,
                                 placeholder="Type a sentence with [MASK], two sentences joined by ||, any text, or /help")
                send = gr.Button("Send", elem_id="chat-send", variant="primary", scale=1)
                clear = gr.Button("Clear", elem_id="chat-clear", scale=1)
            gr.Examples(EXAMPLES, inputs=[msg], label="Try")
            gr.on([send.click, msg.submit], self.chat, inputs=[msg, bot], outputs=[bot, msg], api_name="chat")
            clear.click(lambda: ([], ""), None, [bot, msg], api_visibility="private", queue=False)
        return tab
