from memory.events import EventLog


def test_timeline_is_ordered_and_redacts_secrets(redis):
    log = EventLog(redis, "acme")
    log.record("t1", "inbound.received", actor="u1", text="hi", api_key="sk-123")
    log.record("t2", "inbound.received", actor="u2", text="other")
    pipe = redis.pipeline(transaction=True)
    log.record("t1", "job.enqueued", pipe=pipe, job="handle_message")
    pipe.execute()
    log.record("t1", "job.finished", nested={"password": "x", "ok": True})

    events = log.timeline("t1")
    assert [e.kind for e in events] == ["inbound.received", "job.enqueued", "job.finished"]
    assert events[0].data["api_key"] == "***"
    assert events[2].data["nested"] == {"password": "***", "ok": True}
    assert log.timeline("nope") == []
    assert [e.trace_id for e in log.recent(10)] == ["t1", "t2", "t1", "t1"]
