"""Real archive remotes on 127.0.0.1 for the tests: rclone's WebDAV and S3 servers, and wsgidav.

Each is a real server process serving a temporary folder, reachable only on loopback. Helix
reaches it as an rclone remote defined purely by ``RCLONE_CONFIG_<NAME>_*`` variables (passed to
the daemon through ``SyncSettings.extra_env``), exactly as an operator defines one on Railway.
``stop()``/``start()`` keep the same port, so "the server went down and came back" is real.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from sync._rclone.binary import find_rclone
from sync.settings import SyncSettings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def obscure(password: str) -> str:
    """What an operator does by hand: ``rclone obscure 'password'``."""
    out = subprocess.run([find_rclone(), "obscure", "--", password], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"test server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"test server did not listen on {port}")


@dataclass
class LoopbackRemote:
    """One server process and the rclone remote definition that reaches it."""

    kind: str  # "webdav" (rclone serve webdav), "wsgidav", "s3" (rclone serve s3)
    root: Path
    name: str = "loop"
    user: str = "helix"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    port: int = field(default_factory=free_port)
    bwlimit: str | None = None
    proc: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._obscured = obscure(self.password)

    @property
    def storage(self) -> Path:
        """Where objects land on disk (S3 keeps them under a bucket folder)."""
        return self.root / "bucket" if self.kind == "s3" else self.root

    def env(self, *, password: str | None = None) -> dict[str, str]:
        n = f"RCLONE_CONFIG_{self.name.upper()}_"
        pw = self._obscured if password is None else obscure(password)
        if self.kind == "s3":
            return {n + "TYPE": "s3", n + "PROVIDER": "Rclone", n + "ENDPOINT": f"http://127.0.0.1:{self.port}",
                    n + "ACCESS_KEY_ID": self.user,
                    n + "SECRET_ACCESS_KEY": self.password if password is None else password,
                    n + "FORCE_PATH_STYLE": "true"}
        vendor = "rclone" if self.kind == "webdav" else "other"
        return {n + "TYPE": "webdav", n + "URL": f"http://127.0.0.1:{self.port}/", n + "VENDOR": vendor,
                n + "USER": self.user, n + "PASS": pw}

    @property
    def archive(self) -> str:
        return f"{self.name}:bucket" if self.kind == "s3" else f"{self.name}:"

    def settings(self, data_dir: Path, *, password: str | None = None, **overrides: object) -> SyncSettings:
        base = SyncSettings(archive=self.archive, data_dir=data_dir, retries=2, retry_base_s=0.05,
                            low_level_retries=1, io_timeout_s=10, connect_timeout_s=2,
                            extra_env=self.env(password=password))
        return replace(base, **overrides)

    def argv(self) -> list[str]:
        if self.kind == "wsgidav":
            config = self.root.parent / f"wsgidav-{self.port}.json"
            config.write_text(json.dumps({
                "host": "127.0.0.1", "port": self.port, "provider_mapping": {"/": str(self.root)},
                "http_authenticator": {"domain_controller": None, "accept_basic": True,
                                       "accept_digest": False, "default_to_digest": False},
                "simple_dc": {"user_mapping": {"*": {self.user: {"password": self.password}}}},
                "verbose": 1, "logging": {"enable": False}, "server": "cheroot",
            }))
            return [sys.executable, "-m", "wsgidav.server.server_cli", "-c", str(config)]
        rclone = find_rclone()
        common = ["--addr", f"127.0.0.1:{self.port}", "--log-level", "ERROR"]
        if self.bwlimit:
            common += ["--bwlimit", self.bwlimit]
        if self.kind == "s3":
            (self.root / "bucket").mkdir(exist_ok=True)
            return [rclone, "serve", "s3", str(self.root), *common, "--auth-key", f"{self.user},{self.password}"]
        return [rclone, "serve", "webdav", str(self.root), *common, "--user", self.user, "--pass", self.password]

    def start(self) -> LoopbackRemote:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        _wait_port(self.port, self.proc)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def files(self, pattern: str = "**/*") -> list[Path]:
        return sorted(p for p in self.storage.glob(pattern) if p.is_file())

    def has(self, pattern: str) -> bool:
        return bool(self.files(pattern))

    def clear(self) -> None:
        for child in self.storage.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
