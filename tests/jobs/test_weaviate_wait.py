"""With WEAVIATE_URL set, a worker waits for Weaviate before taking jobs (with growing pauses, saying so in its log and
heartbeat), and never writes memories to the embedded store instead: memory is not split between two stores."""
from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from rq import Queue
from rq.job import JobStatus
from rq.serializers import JSONSerializer

from bot.cli import main
from harness.fakes.weaviate_server import FakeWeaviate
from jobs.memory_wiring import WeaviateWait, open_memory
from jobs.worker import make_worker
from kernel.settings import load_settings
from memory.weaviate_connect import WeaviateUnavailable
from tests.jobs import work

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def late(settings, monkeypatch):  # type: ignore[no-untyped-def]
    """A Weaviate address where nothing answers yet; start() brings the fake Weaviate up there."""
    http, grpc = free_port(), free_port()
    monkeypatch.setenv("WEAVIATE_URL", f"http://127.0.0.1:{http}")
    monkeypatch.setenv("WEAVIATE_GRPC_PORT", str(grpc))
    fake = FakeWeaviate()
    fake.start_late = lambda: fake.start(http, grpc)  # type: ignore[attr-defined]
    yield fake
    if fake.http_port:
        fake.stop()


def test_memory_waits_for_a_weaviate_that_comes_up_late(late, caplog):
    pauses: list[float] = []
    misses: list[str] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 4:
            late.start_late()

    with caplog.at_level(logging.WARNING, logger="deputy.memory"):
        memory = open_memory(load_settings(), WeaviateWait(max_pause_s=3, on_miss=misses.append, sleep=sleep))
    try:
        assert memory.store is memory.backends["weaviate"]
        assert pauses == [1, 2, 3, 3]  # doubling, at most WEAVIATE_RETRY_MAX_S apart
        assert len(misses) == 4 and "did not answer" in misses[0] and late.url in misses[0]
        assert caplog.text.count("semantic memory waits for Weaviate") == 4
    finally:
        memory.close()


def test_a_weaviate_that_does_not_answer_is_an_error_never_the_embedded_store(late):
    with pytest.raises(WeaviateUnavailable, match="WEAVIATE_URL"):
        open_memory(load_settings())


def test_a_worker_takes_no_job_before_weaviate_answers(late, redis, caplog):
    job = Queue("default", connection=redis, serializer=JSONSerializer).enqueue_call("tests.jobs.work.probe", args=({},))
    work.SEEN.clear()
    when_waiting: list[tuple[int, JobStatus | None]] = []

    def start_once_waiting() -> None:
        work.wait(lambda: "semantic memory waits for Weaviate" in caplog.text, 30)
        when_waiting.append((len(work.SEEN), job.get_status(refresh=True)))
        late.start_late()

    starter = threading.Thread(target=start_once_waiting, daemon=True)
    starter.start()
    with caplog.at_level(logging.WARNING, logger="deputy.memory"):
        make_worker(redis, jobs=work.JOBS, settings=load_settings()).work(burst=True, logging_level="WARNING")
    starter.join(10)

    assert when_waiting == [(0, JobStatus.QUEUED)]  # it was waiting, and had taken no job
    assert job.get_status(refresh=True) == "finished"
    memory = work.SEEN[-1].memory
    assert memory.store is memory.backends["weaviate"]


def test_a_waiting_worker_says_why_in_deputy_health_until_weaviate_answers(late, redis_url, capsys, tmp_path):
    env = {**os.environ, "REDIS_URL": redis_url, "DATA_DIR": str(tmp_path / "worker"), "EMBEDDED_REDIS": "false",
           "WEAVIATE_RETRY_MAX_S": "1", "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen([sys.executable, "-m", "bot.cli", "worker", "--workers", "1"], cwd=ROOT, env=env)

    def health() -> str:
        main(["health", "--role", "worker"])
        return capsys.readouterr().out

    try:
        assert work.wait(lambda: "none ready yet: waiting for Weaviate" in health(), 60), health()
        late.start_late()
        assert work.wait(lambda: "waiting for Weaviate" not in health(), 60), health()
    finally:
        worker.terminate()
        worker.wait(30)
