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


def test_configured_secrets_and_credentials_are_masked_but_token_counts_stay(redis):
    log = EventLog(redis, "acme", secrets=["wh-secret-1234"])
    log.record("t1", "reply.failed", error="POST https://api.telegram.org/bot123456:AAE-x_y/sendMessage: 404",
               detail=ValueError("signature made with wh-secret-1234 did not match"), bot_token="123456:AAE-x_y",
               headers={"Authorization": "Bearer xoxb-1-2-abc"}, prompt_tokens=1200, completion_tokens=80)

    [event] = log.timeline("t1")
    assert event.data["error"] == "POST https://api.telegram.org/bot***/sendMessage: 404"
    assert event.data["detail"] == "signature made with *** did not match"
    assert event.data["bot_token"] == "***" and event.data["headers"] == {"Authorization": "***"}
    assert (event.data["prompt_tokens"], event.data["completion_tokens"]) == (1200, 80)
