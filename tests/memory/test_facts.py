from memory.facts import FactStore


def test_a_fact_written_twice_keeps_both_versions_newest_current(redis):
    facts = FactStore(redis, "acme")
    first = facts.set("Ana's phone", "+34 600 000 001", source_event="t1")
    second = facts.set("ana's  PHONE", "+34 600 000 002", source_event="t2")

    assert facts.get("ana's phone").value == "+34 600 000 002"
    history = facts.history("ana's phone")
    assert [f.value for f in history] == ["+34 600 000 001", "+34 600 000 002"]
    assert history[0].valid_to is not None and history[0].superseded_by_event == "t2"
    assert history[1].current and history[1].version == 2
    assert facts.as_of("ana's phone", first.valid_from + 1e-6).value == "+34 600 000 001"
    assert second.valid_from >= first.valid_from


def test_writing_the_current_value_again_adds_no_version(redis):
    facts = FactStore(redis, "acme")
    facts.set("vat rate", "21%", source_event="a")
    facts.set("vat rate", "21%", source_event="b")
    assert len(facts.history("vat rate")) == 1


def test_retire_ends_the_fact_but_keeps_history(redis):
    facts = FactStore(redis, "acme")
    facts.set("office", "Madrid")
    assert facts.retire("office", source_event="moved") is not None
    assert facts.get("office") is None
    assert facts.history("office")[0].value == "Madrid"
    assert facts.retire("office") is None


def test_facts_are_namespaced_per_workspace(redis):
    FactStore(redis, "a").set("k", "1")
    assert FactStore(redis, "b").get("k") is None
    assert all(k.startswith(b"dp:a:") for k in redis.keys("dp:*"))
