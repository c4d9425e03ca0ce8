"""Worker and cron heartbeats: fresh ones are alive, stale ones are not, readiness is per process."""
import threading

from jobs.heartbeat import FORGET_AFTER_S, Heartbeats, Pulse, host_of, process_ident


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_fresh_beat_is_alive_and_a_stale_one_is_not(redis):
    clock = Clock()
    beats = Heartbeats(redis, clock)
    beats.beat("worker", "box:1")
    clock.now += 30
    beats.beat("worker", "box:2", ready=False, detail="loading models")

    assert [b["ident"] for b in beats.alive("worker", max_age_s=60)] == ["box:1", "box:2"]
    clock.now += 31  # box:1 last beat 61 s ago
    alive = beats.alive("worker", max_age_s=60)
    assert alive == [{"ident": "box:2", "at": clock.now - 31, "ready": False, "detail": "loading models"}]
    assert beats.alive("cron", max_age_s=60) == []


def test_ready_needs_an_alive_process_that_is_ready(redis):
    clock = Clock()
    beats = Heartbeats(redis, clock)
    assert not beats.ready("worker", 60)
    beats.beat("worker", "box:1", ready=False, detail="warming the intent classifier")
    assert not beats.ready("worker", 60)
    beats.beat("worker", "box:2", ready=True)
    assert beats.ready("worker", 60)
    clock.now += 61
    assert not beats.ready("worker", 60)  # the ready one went silent


def test_processes_silent_for_an_hour_are_dropped_when_another_beats(redis):
    clock = Clock()
    beats = Heartbeats(redis, clock)
    beats.beat("cron", "old-container:7")
    clock.now += FORGET_AFTER_S + 1
    beats.beat("cron", "new-container:7")
    assert redis.hkeys(Heartbeats.key("cron")) == [b"new-container:7"]
    assert 0 < redis.ttl(Heartbeats.key("cron")) <= FORGET_AFTER_S


def test_a_field_not_written_by_a_beat_is_ignored(redis):
    beats = Heartbeats(redis, Clock())
    redis.hset(Heartbeats.key("worker"), "box:9", "not json")
    beats.beat("worker", "box:1")
    assert [b["ident"] for b in beats.alive("worker", 60)] == ["box:1"]


def test_a_pulse_beats_on_entry_when_due_and_is_forgotten_on_exit(redis):
    clock, mono = Clock(), Clock(0.0)
    beats = Heartbeats(redis, clock)
    with Pulse(beats, "cron", every_s=10, ident="box:5", clock=mono) as pulse:
        assert beats.ready("cron", 60)
        clock.now += 50
        mono.now += 5
        pulse.beat_if_due()  # not due: the last beat stands
        assert beats.alive("cron", 60)[0]["at"] == clock.now - 50
        mono.now += 5
        pulse.beat_if_due()
        assert beats.alive("cron", 60)[0]["at"] == clock.now
        pulse.mark(False, "waiting for Weaviate at http://weaviate:8080")
        assert beats.alive("cron", 60)[0]["detail"] == "waiting for Weaviate at http://weaviate:8080"
    assert beats.alive("cron", 60) == []


def test_a_warming_pulse_beats_from_its_thread(redis):
    beats = Heartbeats(redis)
    sent = threading.Event()

    class Counting(Pulse):
        def send(self) -> None:
            super().send()
            if threading.current_thread() is not threading.main_thread():
                sent.set()

    with Counting(beats, "worker", every_s=0.01, ident="box:3", ready=False) as pulse, pulse.warming():
        assert sent.wait(10)
    assert beats.alive("worker", 60) == []


def test_a_process_is_named_by_its_host_and_pid():
    assert process_ident("deputy-worker-1", 42) == "deputy-worker-1:42"
    assert host_of("deputy-worker-1:42") == "deputy-worker-1"
    assert host_of("fe80::1:42") == "fe80::1"
