from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest
from redis import Redis

from bot.cli import main
from jobs.memory_wiring import Memory, open_memory
from jobs.queues import BACKGROUND, JobQueues
from jobs.worker import run_burst
from memory.events import EventLog
from memory.ingest import source_for
from memory.retention import NothingToForget, forget
from memory.store import SearchFilter
from memory.workspaces import Workspaces
from harness.fakes.weaviate_server import FakeWeaviate
from tests.memory.contract import item

DAY = 86_400.0
NOW = time.time()
WS = "default"


@pytest.fixture
def weaviate(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWeaviate]:
    server = FakeWeaviate().start()
    monkeypatch.setenv("WEAVIATE_URL", server.url)
    monkeypatch.setenv("WEAVIATE_GRPC_PORT", str(server.grpc_port))
    yield server
    server.stop()


@pytest.fixture
def both(weaviate: FakeWeaviate, settings) -> Iterator[Memory]:  # type: ignore[no-untyped-def]
    """Semantic memory with both backends configured, each holding the same memories."""
    from kernel.settings import load_settings

    memory = open_memory(load_settings())
    assert set(memory.backends) == {"sqlite", "weaviate"}
    items = [
        item("r1", "Anna prefers calls after 2pm", workspace=WS, project="sales"),
        item("e1", "Please wire the deposit today", workspace=WS, project="sales", source="email", trust="untrusted"),
        item("f1", "The lease ends in September", workspace=WS, project="admin", source=source_for(Path("lease.md"))),
        item("o1", "Another workspace's note", workspace="other", project="sales"),
    ]
    for backend in memory.backends.values():
        backend.add(items)
    yield memory
    memory.close()


def counts(memory: Memory, workspace: str = WS, where: SearchFilter | None = None) -> dict[str, int]:
    return {name: backend.count(workspace, where) for name, backend in memory.backends.items()}


def test_forget_by_source_removes_from_every_backend_and_records_it(both: Memory, settings, redis: Redis, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["forget", "--source", "email"]) == 0
    assert "Forgot 2 memories (1 from sqlite, 1 from weaviate)" in capsys.readouterr().out
    assert counts(both) == {"sqlite": 2, "weaviate": 2}
    assert counts(both, where=SearchFilter(sources=["email"])) == {"sqlite": 0, "weaviate": 0}
    [event] = EventLog(redis, WS).recent(10, kinds=["memory.forgotten"])
    assert event.actor == "cli" and event.data["source"] == "email" and event.data["deleted"] == {"sqlite": 1, "weaviate": 1}


def test_forget_a_file_by_its_path(both: Memory, settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "lease.md").write_text("x")
    monkeypatch.chdir(tmp_path)
    both.backends["sqlite"].add([item("f2", "Lease details", workspace=WS, source=source_for(tmp_path / "lease.md"))])
    assert main(["forget", "--source", "lease.md"]) == 0
    assert both.backends["sqlite"].count(WS, SearchFilter(sources=[source_for(tmp_path / "lease.md")])) == 0


def test_forget_by_id_and_by_project(both: Memory, settings) -> None:  # type: ignore[no-untyped-def]
    assert main(["forget", "--id", "r1"]) == 0
    assert counts(both) == {"sqlite": 2, "weaviate": 2}
    assert main(["forget", "--project", "Admin"]) == 0
    assert counts(both) == {"sqlite": 1, "weaviate": 1}
    # the other workspace is untouched
    assert counts(both, workspace="other") == {"sqlite": 1, "weaviate": 1}


def test_forget_needs_something_to_forget(both: Memory, settings, capsys, redis: Redis) -> None:  # type: ignore[no-untyped-def]
    assert main(["forget"]) == 2
    assert "say what to forget" in capsys.readouterr().err
    with pytest.raises(NothingToForget):
        forget(both.backends, EventLog(redis, WS), WS)
    assert counts(both) == {"sqlite": 3, "weaviate": 3}


def test_retention_sweep_on_the_background_queue_expires_old_memories(settings, redis: Redis) -> None:  # type: ignore[no-untyped-def]
    memory = open_memory(settings)
    memory.store.add([
        item("old-sales", "Quote sent to Globex", workspace=WS, project="sales", created_at=NOW - 40 * DAY),
        item("new-sales", "Globex signed the contract", workspace=WS, project="sales", created_at=NOW - 5 * DAY),
        item("old-admin", "Passport renewed", workspace=WS, project="admin", created_at=NOW - 400 * DAY),
        item("other-ws", "Old note elsewhere", workspace="other", project="sales", created_at=NOW - 400 * DAY),
    ])
    Workspaces(redis).set_retention(WS, "sales", 30)
    Workspaces(redis).add_project(WS, "admin")  # no retention: kept for ever

    JobQueues(redis).enqueue("jobs.ingest.sweep_retention", {"workspace": WS}, job_id="sweep-1", queue=BACKGROUND)
    run_burst(redis)

    assert {h.item.id for h in memory.store.search(WS, "Globex quote contract passport", limit=10)} == {"new-sales", "old-admin"}
    assert memory.store.count("other") == 1
    [event] = EventLog(redis, WS).recent(10, kinds=["memory.expired"])
    assert event.data["project"] == "sales" and event.data["deleted"] == {"sqlite": 1}
    memory.close()


def test_the_cron_process_expires_old_memories(settings, redis: Redis) -> None:  # type: ignore[no-untyped-def]
    """What `deputy cron` schedules, run by a worker: memories past their project's retention are swept."""
    from jobs.cron import build_scheduler

    memory = open_memory(settings)
    memory.store.add([
        item("old-sales", "Quote sent to Globex", workspace=WS, project="sales", created_at=NOW - 40 * DAY),
        item("new-sales", "Globex signed the contract", workspace=WS, project="sales", created_at=NOW - 5 * DAY),
    ])
    Workspaces(redis).set_retention(WS, "sales", 30)

    build_scheduler(redis, settings).enqueue_jobs()  # a periodic job is due when the scheduler starts
    run_burst(redis)

    assert {h.item.id for h in memory.store.search(WS, "Globex quote contract", limit=10)} == {"new-sales"}
    [event] = EventLog(redis, WS).recent(10, kinds=["memory.expired"])
    assert event.actor == "cron" and event.data["project"] == "sales" and event.data["deleted"] == {"sqlite": 1}
    memory.close()
