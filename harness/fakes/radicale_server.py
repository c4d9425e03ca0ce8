"""A real Radicale CalDAV server on loopback, in a thread, with htpasswd auth and a temp storage folder."""
from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import radicale.config
import radicale.server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RadicaleServer:
    def __init__(self, folder: Path, username: str = "owner", password: str = "calendar-pass") -> None:
        self.folder = folder
        self.username = username
        self.password = password
        self.port = free_port()
        self._stop: socket.socket | None = None
        self._stop_out: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> "RadicaleServer":
        self.folder.mkdir(parents=True, exist_ok=True)
        users = self.folder / "users"
        users.write_text(f"{self.username}:{self.password}\n")
        configuration = radicale.config.load("")
        configuration.update(
            {
                "server": {"hosts": f"127.0.0.1:{self.port}"},
                "storage": {"filesystem_folder": str(self.folder / "collections")},
                "auth": {"type": "htpasswd", "htpasswd_filename": str(users), "htpasswd_encryption": "plain", "delay": "0"},
                "logging": {"level": "warning"},
            },
            "test",
        )
        # radicale.server.serve stops when the other end of this socket pair is closed
        self._stop, self._stop_out = socket.socketpair()
        self._thread = threading.Thread(target=radicale.server.serve, args=(configuration, self._stop_out), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url, timeout=1)
                return self
            except urllib.error.HTTPError:
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"radicale did not start on port {self.port}")

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._stop_out is not None:
            self._stop_out.close()
