from memory.tasks import TaskStore


def test_add_list_done(redis):
    tasks = TaskStore(redis, "acme")
    a = tasks.add("send invoice", project="billing")
    b = tasks.add("call Ana")
    assert [t.title for t in tasks.list()] == ["send invoice", "call Ana"]
    found, closed = tasks.done(a.id)
    assert closed and found.status == "done"
    assert [t.id for t in tasks.list()] == [b.id]
    assert [t.id for t in tasks.list(status="done")] == [a.id]


def test_done_twice_and_unknown(redis):
    tasks = TaskStore(redis, "acme")
    t = tasks.add("x")
    assert tasks.done(t.id)[1] is True
    assert tasks.done(t.id)[1] is False
    assert tasks.done(999) == (None, False)


def test_same_source_event_creates_one_task(redis):
    tasks = TaskStore(redis, "acme")
    first = tasks.add("pay rent", source_event="trace-1")
    again = tasks.add("pay rent", source_event="trace-1")
    assert first.id == again.id
    assert len(tasks.list()) == 1
