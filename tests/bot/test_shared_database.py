"""Two Deputys on one Redis database would run each other's jobs (the queues and the outbox are per database): a
process for another workspace refuses to start there and says what to do; the workspace that owns it starts."""
from __future__ import annotations

import pytest
from redis import Redis

from bot.cli import main
from kernel.keys import OWNER


def test_a_worker_for_another_workspace_refuses_a_database_already_in_use(settings, redis: Redis, monkeypatch: pytest.MonkeyPatch,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WORKSPACE", "studio")
    assert main(["worker", "--burst"]) == 0
    assert redis.get(OWNER) == b"studio"

    monkeypatch.setenv("WORKSPACE", "review")
    assert main(["worker", "--burst"]) == 2
    said = capsys.readouterr().err
    assert "already serves workspace 'studio'" in said and "needs a database of its own" in said
    assert redis.get(OWNER) == b"studio"

    monkeypatch.setenv("WORKSPACE", "studio")
    assert main(["worker", "--burst"]) == 0
