"""Hugging Face Spaces entry point: ``python app.py`` serves the bertdemo app.

Models and limits come from ``BERTDEMO_*`` environment variables (the same names as the CLI flags;
see the README), so a Space picks its models through its settings, never through the UI.
``demo`` is built at import time because Spaces (and ``gradio app.py`` reload mode) look for it.
"""

from __future__ import annotations

import sys

from bertdemo.config import load_settings
from bertdemo.errors import BertDemoError
from bertdemo.ui import build_app, launch_kwargs
from bertdemo.ui.files import exit_cleanly_on_sigterm

try:
    settings = load_settings()
    demo = build_app(settings)
except BertDemoError as err:  # bad settings or a model that cannot load: one clear line, no traceback
    print(f"bertdemo: cannot start: {err}", file=sys.stderr)
    raise SystemExit(2) from None

if __name__ == "__main__":
    exit_cleanly_on_sigterm()  # SIGTERM (a Space restart, docker stop) deletes visitors' files like Ctrl-C
    demo.launch(**launch_kwargs(settings))
