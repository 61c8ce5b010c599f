"""bertdemo: what BERT learns, how it is used, and a bias audit before it ships.

Architecture: one :class:`bertdemo.service.ModelService` (models load once, requests batch, typed
errors) and thin faces over it: the Gradio app (``app.py``), the CLI (``bertdemo.cli``) and the
audit (``bertdemo.audit``).
"""

from bertdemo import config as _config  # noqa: F401  (sets the quiet/offline environment first)

__version__ = "0.1.0"
