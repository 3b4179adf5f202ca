"""`run_forever`, as the CLI runs it: one line saying where to point ccxt, a clean stop on a signal."""

from __future__ import annotations

import signal
import subprocess
import sys

import requests

SCRIPT = """
from xray_sim.exchange.config import ApiCredential, EmulatorConfig
from xray_sim.exchange.server import run_forever
run_forever(EmulatorConfig(port=0, credentials=(ApiCredential(key="cli-key", secret="cli-secret"),)))
"""


def test_run_forever_announces_itself_and_stops_on_sigint_and_sigterm():
    for sig in (signal.SIGINT, signal.SIGTERM):
        with subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) as process:
            try:
                assert process.stdout is not None and process.stderr is not None
                line = process.stdout.readline()
                base_url = line.split(" on ", 1)[1].split(" ", 1)[0]
                assert base_url.startswith("http://127.0.0.1:")
                assert f"rebase_api_urls(ex.urls['api'], '{base_url}', 'mexc')" in line
                assert "cli-key" in line and "cli-secret" not in line  # secrets are never printed
                assert requests.get(base_url + "/api/v3/ping", timeout=5).json() == {}
                process.send_signal(sig)
                assert process.wait(timeout=10) == 0
                assert "Traceback" not in process.stderr.read()
            finally:
                process.kill()
