"""The repository is a Hugging Face Space as it is, and Gradio's own address variables work."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text("utf-8")
    m = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    assert m, "README.md must start with the Space's YAML front matter"
    return yaml.safe_load(m.group(1))


def test_readme_front_matter_makes_a_valid_space():
    meta = front_matter()
    assert meta["sdk"] == "gradio" and (ROOT / meta["app_file"]).is_file()
    pinned = re.search(r"^gradio(?:\[mcp\])?==([\d.]+)\b", (ROOT / "requirements.txt").read_text(), re.M)
    assert pinned and str(meta["sdk_version"]) == pinned.group(1)
    assert meta["license"] == "apache-2.0" and meta["title"]


def test_gradio_names_fill_in_when_bertdemo_ones_are_unset():
    from bertdemo.config import load_settings

    s = load_settings(env={"GRADIO_SERVER_PORT": "7999", "GRADIO_SERVER_NAME": "0.0.0.0"})
    assert (s.host, s.port) == ("0.0.0.0", 7999)
    s = load_settings(env={"GRADIO_SERVER_PORT": "7999", "BERTDEMO_PORT": "7001"})
    assert s.port == 7001  # ours, when set, win


def test_app_py_serves_on_gradio_server_port(model_env):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in model_env.items() if k not in ("BERTDEMO_PORT", "BERTDEMO_HOST")}
    env.update(GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            assert proc.poll() is None, proc.stderr.read()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    assert r.status == 200
                    return
            except OSError:
                time.sleep(0.5)
        raise AssertionError(f"app.py did not answer on GRADIO_SERVER_PORT={port}")
    finally:
        proc.terminate()
        proc.wait(30)

