"""``bertdemo serve``: the Gradio app on this machine (same builder as ``app.py`` on a Space)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from bertdemo.config import ENV_VARS, validate_settings
from bertdemo.errors import BertDemoError


def register(subparsers: Any) -> None:
    from bertdemo.cli import add_model_flags

    p = subparsers.add_parser("serve", help="serve the web app (chat, fill mask, next sentence, sentiment, audit)")
    p.add_argument("--host", help=f"interface to listen on (default 127.0.0.1; 0.0.0.0 for all) [{ENV_VARS['host']}]")
    p.add_argument("--port", type=int, help=f"port (default 7860) [{ENV_VARS['port']}]")
    p.add_argument("--queue-concurrency", type=int, help=f"requests run at once per event [{ENV_VARS['queue_concurrency']}]")
    p.add_argument("--fast-concurrency", type=int, help="requests run at once by fill mask, next sentence and sentiment, "
                                                        f"batched together [{ENV_VARS['fast_concurrency']}]")
    p.add_argument("--queue-max-size", type=int, help=f"waiting requests before 'busy' [{ENV_VARS['queue_max_size']}]")
    p.add_argument("--mcp", action="store_true", default=None,
                   help=f"also serve the tools for agents over MCP at /gradio_api/mcp/ [{ENV_VARS['mcp']}, GRADIO_MCP_SERVER]")
    p.add_argument("--share", action="store_true",
                   help="refused: a public gradio.live tunnel sends traffic through a third party; deploy a Space instead")
    add_model_flags(p)
    p.set_defaults(handler=_serve)


def settings_for(args: argparse.Namespace) -> Any:
    from bertdemo.cli import settings_from_args

    settings = settings_from_args(args).replace(
        host=getattr(args, "host", None), port=getattr(args, "port", None),
        queue_concurrency=getattr(args, "queue_concurrency", None), queue_max_size=getattr(args, "queue_max_size", None),
        fast_concurrency=getattr(args, "fast_concurrency", None),
        mcp=getattr(args, "mcp", None),
    )
    validate_settings(settings)
    if not 0 < settings.port < 65536:
        raise BertDemoError(f"port: must be from 1 to 65535, got {settings.port}")
    return settings


def _serve(args: argparse.Namespace) -> int:
    if args.share:
        raise BertDemoError("--share is refused: it would publish the app through a third-party tunnel. "
                            "Use --host 0.0.0.0 on a trusted network, or deploy to a Hugging Face Space")
    started = time.perf_counter()
    settings = settings_for(args)
    from bertdemo.ui import build_app, launch_kwargs

    demo = build_app(settings)
    kwargs = launch_kwargs(settings)
    url = f"http://{kwargs['server_name']}:{kwargs['server_port']}/"
    print(f"bertdemo: models loaded in {time.perf_counter() - started:.1f}s; serving on {url}"
          + (f" (MCP: {url}gradio_api/mcp/)" if settings.mcp else ""), flush=True)
    from bertdemo.ui.files import exit_cleanly_on_sigterm

    exit_cleanly_on_sigterm()
    demo.launch(**kwargs)
    return 0
