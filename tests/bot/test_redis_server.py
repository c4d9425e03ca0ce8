"""`deputy up` with no Redis answering starts an embedded one; with none installable it says how to fix it."""
from __future__ import annotations

import logging
import socket
import stat

import pytest
from redis import Redis
from redis.exceptions import AuthenticationError

from bot import redis_server
from bot.redis_server import RedisUnavailable, ensure_redis, password_file
from kernel.settings import load_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_starts_an_embedded_redis_with_an_append_only_file(tmp_path):
    url = f"redis://127.0.0.1:{free_port()}/0"
    server = ensure_redis(url, tmp_path, embedded=True)
    assert server is not None
    try:
        client = Redis.from_url(server.url)
        client.set("k", "v")
        assert client.config_get("appendonly")["appendonly"] == "yes"
        assert client.config_get("appendfsync")["appendfsync"] == "everysec"
        assert (tmp_path / "redis").is_dir()
    finally:
        server.stop()
    # a second start finds the data again (it is durable in the append-only file)
    again = ensure_redis(url, tmp_path, embedded=True)
    try:
        assert Redis.from_url(again.url).get("k") == b"v"
    finally:
        again.stop()


def test_the_embedded_redis_asks_for_a_password_kept_private_in_data_dir(tmp_path, caplog):
    """Any client of Deputy's Redis can queue work for its workers: one without the password gets nothing."""
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with caplog.at_level(logging.DEBUG):
        server = ensure_redis(url, tmp_path, embedded=True)
    assert server is not None
    secret = password_file(tmp_path).read_text().strip()
    try:
        with pytest.raises(AuthenticationError):  # NOAUTH
            Redis(host="127.0.0.1", port=port).ping()
        assert Redis.from_url(server.url).ping()
        assert Redis(host="127.0.0.1", port=port, password=secret).ping()
        assert stat.S_IMODE(password_file(tmp_path).stat().st_mode) == 0o600
        assert "started an embedded one" in caplog.text and secret not in caplog.text
    finally:
        server.stop()
    again = ensure_redis(url, tmp_path, embedded=True)
    try:
        assert password_file(tmp_path).read_text().strip() == secret
        assert again.url == server.url
        with pytest.raises(AuthenticationError):
            Redis(host="127.0.0.1", port=port).ping()
    finally:
        again.stop()


def test_a_deputy_process_started_on_its_own_finds_the_embedded_password(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6390/0")
    assert load_settings().redis_url == "redis://127.0.0.1:6390/0"  # nothing embedded yet
    secret = redis_server.embedded_password(tmp_path)
    assert load_settings().redis_url == f"redis://:{secret}@127.0.0.1:6390/0"
    # a URL with credentials of its own, or a Redis elsewhere, is left as it is
    for url in ("redis://:mine@127.0.0.1:6390/0", "redis://deputy:mine@localhost:6390/0", "redis://redis.example.com:6379/0",
                "rediss://127.0.0.1:6390/0"):
        monkeypatch.setenv("REDIS_URL", url)
        assert load_settings().redis_url == url


def test_an_unanswered_url_is_reported_without_its_password(monkeypatch, tmp_path):
    monkeypatch.setattr(redis_server, "answers", lambda url: False)
    with pytest.raises(RedisUnavailable) as err:
        ensure_redis("redis://:hunter2@redis.example.com:6379/0", tmp_path, embedded=True)
    assert "hunter2" not in str(err.value) and "redis://:***@redis.example.com:6379/0" in str(err.value)


def test_a_running_redis_is_used_as_is(redis_url, tmp_path):
    assert ensure_redis(redis_url, tmp_path, embedded=True) is None


def test_no_binary_anywhere_gives_a_fix(monkeypatch, tmp_path):
    monkeypatch.setattr(redis_server, "redis_binary", lambda: None)
    with pytest.raises(RedisUnavailable, match="Install one"):
        ensure_redis(f"redis://127.0.0.1:{free_port()}/0", tmp_path, embedded=True)


def test_remote_url_is_never_replaced(monkeypatch, tmp_path):
    monkeypatch.setattr(redis_server, "answers", lambda url: False)  # no traffic leaves loopback in tests
    with pytest.raises(RedisUnavailable, match="only started for 127.0.0.1"):
        ensure_redis("redis://redis.example.com:6379/0", tmp_path, embedded=True)
