"""The Redis URL Deputy's processes use: a loopback URL without credentials gets the embedded Redis's
password (kept in DATA_DIR/redis/password, mode 0600), so every process on the machine finds it."""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import quote, urlparse, urlunparse

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


class RedisUnavailable(RuntimeError):
    """No Redis answers and none could be started; the message says how to fix it."""


def password_file(data_dir: Path) -> Path:
    return data_dir / "redis" / "password"


def embedded_password(data_dir: Path) -> str:
    """The embedded Redis's password: made once with `secrets`, then read from DATA_DIR/redis/password."""
    path = password_file(data_dir)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
    password = path.read_text().strip()
    if not password:  # an empty requirepass would let every client in
        raise RedisUnavailable(f"{path} is empty. Delete it: Deputy then makes a new password for its embedded Redis.")
    return password


def with_embedded_password(url: str, data_dir: Path) -> str:
    """`url` with the embedded Redis's password, when it names a loopback Redis without credentials and
    DATA_DIR holds one; otherwise `url` as it is."""
    parsed = urlparse(url)
    path = password_file(data_dir)
    if parsed.scheme != "redis" or parsed.hostname not in LOCAL_HOSTS or parsed.username or parsed.password or not path.is_file():
        return url
    password = path.read_text().strip()
    return with_password(url, password) if password else url


def with_password(url: str, password: str) -> str:
    parsed = urlparse(url)
    host = parsed.netloc.rpartition("@")[2]
    return urlunparse(parsed._replace(netloc=f":{quote(password, safe='')}@{host}"))


def shown(url: str) -> str:
    """`url` fit for messages and logs: a password in it becomes ***."""
    parsed = urlparse(url)
    if not parsed.password:
        return url
    user, host = parsed.netloc.rpartition("@")[0].partition(":")[0], parsed.netloc.rpartition("@")[2]
    return urlunparse(parsed._replace(netloc=f"{user}:***@{host}"))


