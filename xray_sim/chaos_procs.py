"""The processes of a chaos load test (`xray_sim.chaos`): runtime workers (`xray runtime` child
processes, each with its own /health port) and a redis-server of the harness's own, which it may kill
and start again on the same data."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xray_core.errors import ConfigError, XrayError


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateRedis:
    """A redis-server of the harness's own on a free loopback port, appendonly (everysec), so that it
    can be killed and started again on its data."""

    def __init__(self, workdir: Path) -> None:
        path = shutil.which("redis-server")
        if path is None:
            raise ConfigError("--chaos needs redis-server on PATH (it restarts a Redis of its own)",
                              "install redis-server, or pass --redis-url (then Redis is not restarted)")
        self.path, self.port, self.dir = path, free_port(), workdir / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [self.path, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(self.dir),
                   "--maxmemory-policy", "noeviction"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.1)
        raise XrayError(f"redis-server on port {self.port} did not start", "see redis-server's own log")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@dataclass
class Worker:
    """One `xray runtime` child process."""

    name: str
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    stopped: bool = False

    def start(self) -> None:
        env = self.env | {"XRAY_RUNTIME_PROCESS_ID": self.name, "XRAY_RUNTIME_HTTP_PORT": str(self.port)}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "xray_cli.main", "runtime"], env=env,
                                            stdout=log, stderr=subprocess.STDOUT)
        self.stopped = False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None and not self.stopped

    def signal(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)

    def kill(self) -> None:
        if self.process is not None:
            self.signal(signal.SIGCONT)  # a stopped process dies too
            self.process.kill()
            self.process.wait()
            self.process = None

    def last_words(self) -> str:
        """The last line of its log that is not an info line (why it ended)."""
        lines = self.log_path.read_text(errors="replace").splitlines() if self.log_path.exists() else []
        telling = [line for line in lines if '"level": "info"' not in line]
        return (telling or lines or [""])[-1][-400:]

    def health(self) -> dict[str, Any] | None:
        """Its /health (answered with 503 while degraded), or None when it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as answer:
                return dict(json.loads(answer.read()))
        except urllib.error.HTTPError as degraded:
            with contextlib.suppress(ValueError):
                return dict(json.loads(degraded.read()))
            return None
        except (OSError, ValueError):
            return None
