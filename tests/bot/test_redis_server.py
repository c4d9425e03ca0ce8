"""`deputy up` with no Redis answering starts an embedded one; with none installable it says how to fix it."""
from __future__ import annotations

import socket

import pytest
from redis import Redis

from bot import redis_server
from bot.redis_server import RedisUnavailable, ensure_redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_starts_an_embedded_redis_with_an_append_only_file(tmp_path):
    url = f"redis://127.0.0.1:{free_port()}/0"
    server = ensure_redis(url, tmp_path, embedded=True)
    assert server is not None
    try:
        client = Redis.from_url(url)
        client.set("k", "v")
        assert client.config_get("appendonly")["appendonly"] == "yes"
        assert client.config_get("appendfsync")["appendfsync"] == "everysec"
        assert (tmp_path / "redis").is_dir()
    finally:
        server.stop()
    # a second start finds the data again (it is durable in the append-only file)
    again = ensure_redis(url, tmp_path, embedded=True)
    try:
        assert Redis.from_url(url).get("k") == b"v"
    finally:
        again.stop()


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
