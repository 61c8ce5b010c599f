"""The Chat tab (landing tab): one box for every capability, routed by :mod:`bertdemo.ui.chat`."""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from bertdemo.errors import BertDemoError
from bertdemo.ui import chat
from bertdemo.ui.admission import AUDIT_CONCURRENCY, AUDIT_GROUP
from bertdemo.ui.common import INTERNAL_ERROR, AppContext
from bertdemo.ui.format import esc

log = logging.getLogger(__name__)

AUDIT_QUEUED = ("Quick audit queued (audits run one at a time, so it may wait for others); its summary and "
                "report appear here when it is done.")
SHOWN_CHARS = 2000  # longest user message echoed back into the chat
EXAMPLES = ["Paris is the [MASK] of France.", "The man worked as a [MASK].", "I went to the bakery. || They had no bread left.",
            "This film was a delight from start to finish.", "/help"]


def _text(content: Any) -> str | None:
    """The text of a chat message's content (a string, or gradio's list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return content.get("text") if isinstance(content.get("text"), str) else None
    if isinstance(content, (list, tuple)) and len(content) == 1:
        return _text(content[0])
    return None


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
            "audit": lambda: self.queue_audit(request),
            "sentiment": lambda: [chat.answer_sentiment(svc, r.text)],
            "compare": lambda: [chat.answer_compare(svc, r.task, r.text, r.second)],
        }
        replies = answers[r.kind]()
        before = chat.warnings_for(r)
        if before and replies and isinstance(replies[0], str):
            replies[0] = "\n\n".join([*before, replies[0]])
        return replies

    def queue_audit(self, request: gr.Request | None) -> list[Any]:
        """``/audit``: the chat answers at once (a fast endpoint); the audit itself runs in the next step,
        :meth:`run_audit`, in the audits' own concurrency group. Refused here if this visitor may not queue one."""
        self.audit.admission.check(request)
        return [AUDIT_QUEUED]

    @staticmethod
    def audit_pending(history: Any) -> bool:
        """Whether the last answer in ``history`` is the placeholder of a queued ``/audit``."""
        if not isinstance(history, (list, tuple)) or not history or not isinstance(history[-1], dict):
            return False
        last = history[-1]
        return last.get("role") == "assistant" and _text(last.get("content")) == AUDIT_QUEUED

    def page_chat(self, message: Any, history: Any, asked: Any,
                  request: gr.Request | None = None) -> tuple[list[dict[str, Any]], str, int]:
        """The page's chat event: :meth:`chat`, and a new token when it queued an audit (starts ``chat_audit``)."""
        history, box = self.chat(message, history, request)
        token = int(asked or 0) + 1 if self.audit_pending(history) else asked
        return history, box, token

    def validate_audit(self, history: Any, request: gr.Request | None = None) -> dict[str, Any]:
        """gradio validator of ``chat_audit``, before queueing: a history that does not end in a queued
        ``/audit`` is refused at once (it would only hold a place in the audits' queue), then the visitor's
        pending-audit limits."""
        if not self.audit_pending(history):
            return gr.validate(False, "no audit was asked for: send /audit with /chat first, then pass the "
                                      "history /chat returned")
        refused = self.audit.refusal(request)
        return gr.validate(refused is None, refused[1] if refused else "")

    def run_audit(self, history: Any, request: gr.Request | None = None) -> list[dict[str, Any]]:
        """The queued ``/audit``: a quick audit whose summary and report replace the placeholder."""
        history = list(history) if isinstance(history, (list, tuple)) else []
        if not self.audit_pending(history):
            return history
        try:
            replies = self.audit.quick(request)
        except BertDemoError as err:
            replies = [f"Sorry: {esc(err)}. Type `/help` for what I can do."]
        except Exception as err:
            log.error("internal error in chat audit: %s", type(err).__name__)
            log.debug("traceback", exc_info=True)
            replies = [INTERNAL_ERROR]
        return [*history[:-1], *({"role": "assistant", "content": m} for m in replies)]

    def chat(self, message: Any, history: Any, request: gr.Request | None = None) -> tuple[list[dict[str, Any]], str]:
        """The chat's answer (``/chat``): the history with the message and its replies, and an empty box."""
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

    def build(self) -> gr.Column:
        with gr.Column() as tab:
            # each message its own bubble (a nudge after an answer must not read as part of that answer);
            # no floating label over the first message (the tab is named Chat)
            bot = gr.Chatbot(elem_id="chat-bot", label="Chat with BERT", show_label=False, height=460, layout="bubble",
                             placeholder=chat.HELP, feedback_options=None, buttons=["copy"],
                             group_consecutive_messages=False)
            with gr.Row():
                msg = gr.Textbox(label="Message", elem_id="chat-input", show_label=False, scale=5, autofocus=True,
                                 placeholder="Type a sentence with [MASK], two sentences joined by ||, any text, or /help")
                send = gr.Button("Send", elem_id="chat-send", variant="primary", scale=1)
                clear = gr.Button("Clear", elem_id="chat-clear", scale=1)
            gr.Examples(EXAMPLES, inputs=[msg], label="Try")
            # /audit: the chat answers at once; the audit runs next, in the one audit concurrency group
            # (API callers: call /chat_audit with the history /chat returned). The page starts that event
            # through a hidden token that changes only when an audit was queued: other messages start nothing
            # (no error-raising gate step, so no failed request per message).
            audit_asked = gr.State(0)
            gr.on([send.click, msg.submit], self.page_chat, inputs=[msg, bot, audit_asked],
                  outputs=[bot, msg, audit_asked], api_name="chat")  # API: (message, history) -> (history, box)
            audit_asked.change(self.run_audit, [bot], [bot], api_name="chat_audit", concurrency_id=AUDIT_GROUP,
                               concurrency_limit=AUDIT_CONCURRENCY, validator=self.validate_audit)
            clear.click(lambda: ([], ""), None, [bot, msg], api_visibility="private", queue=False)
        return tab
