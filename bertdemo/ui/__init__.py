"""The Gradio face of bertdemo: ``build_app(settings)`` and ``launch_kwargs(settings)``."""

from bertdemo.ui.layout import build_app, launch_kwargs

__all__ = ["build_app", "launch_kwargs"]
