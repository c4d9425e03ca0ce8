from concurrent.futures import ThreadPoolExecutor

from memory.undo_log import UndoLog, Undoable, UndoStep


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def undoable(id: str, at: float, thread: str = "t1") -> Undoable:
    return Undoable(id=id, thread_id=thread, summary=f"did {id}", created_at=at,
                    steps=[UndoStep(capability="calendar.cancel", args={"uid": id})])


def test_last_is_the_newest_not_undone_in_its_thread(redis):
    clock = Clock()
    log = UndoLog(redis, "acme", clock=clock)
    log.push(undoable("a", clock.now))
    log.push(undoable("b", clock.now))
    log.push(undoable("other", clock.now, thread="t2"))
    assert log.last("t1", 900).id == "b"
    assert log.claim("b")
    assert log.last("t1", 900).id == "a"
    assert log.get("b").steps[0].args == {"uid": "b"} and log.undone("b")
    assert log.last("t3", 900) is None


def test_the_window_is_honoured(redis):
    clock = Clock()
    log = UndoLog(redis, "acme", clock=clock)
    log.push(undoable("a", clock.now))
    clock.now += 900
    assert log.last("t1", 900).id == "a"
    clock.now += 1
    assert log.last("t1", 900) is None
    assert log.get("a") is not None and not log.within(log.get("a"), 900)


def test_a_double_claim_undoes_once(redis):
    log = UndoLog(redis, "acme")
    log.push(undoable("a", 0))
    with ThreadPoolExecutor(8) as pool:
        claims = list(pool.map(lambda _: log.claim("a"), range(8)))
    assert claims.count(True) == 1
    assert log.last("t1", 10**12) is None


def test_the_same_request_may_claim_again(redis):
    log = UndoLog(redis, "acme")
    assert log.claim("a", by="trace-1") and log.claim("a", by="trace-1")
    assert not log.claim("a", by="trace-2") and not log.claim("a")
