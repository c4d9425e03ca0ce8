"""Journey: specialists and model tiers, with a scripted model behind OPENAI_BASE_URL. A calendar request whose
model-made plan also sends an email is refused and the operator is told why (no email leaves, nothing is booked);
/budget then shows each kind of task with the model it went to: planning on the main model, /ask on the cheaper one."""
from __future__ import annotations


import pytest

from harness.fakes.openai_server import ScriptedOpenAI
from tests.journeys.world import ClusterConfig


@pytest.fixture(scope="module")
def cluster_config(model: ScriptedOpenAI) -> ClusterConfig:
    return ClusterConfig(slack=False, telegram=False, env={
        "OPENAI_BASE_URL": model.base_url, "OPENAI_MODEL": "deputy-main", "OPENAI_CHEAP_MODEL": "deputy-light",
        "LLM_PRICES": "deputy-main:0.01:0.03,deputy-light:0.001:0.002"})


def calls(*tools: tuple[str, dict]) -> dict:
    return {"tool_calls": [{"name": name.replace(".", "__"), "arguments": args} for name, args in tools]}


def test_the_calendar_specialist_may_not_send_email_and_budget_shows_the_model_per_task(console, cluster, model):
    model.answer(calls(("calendar.create", {"title": "Call with Ana", "start": "2030-01-04T10:00", "end": "2030-01-04T10:30"}),
                       ("email.send", {"to": ["ana@acme.io"], "subject": "Friday", "body": "See you at 10."})))
    refused = console.ask("/calendar book a call with Ana on Friday at 10 and let her know",
                          containing="may not send email")
    assert "the calendar specialist may not send email" in refused.text and refused.card is None, refused
    assert cluster.emails() == [] and [e for e in cluster.calendar_events() if e.summary == "Call with Ana"] == []
    plans = [r["body"] for r in model.requests if r["body"].get("tools")]
    assert plans and {b["model"] for b in plans} == {"deputy-main"}
    assert not any(t["function"]["name"] == "email__send" for b in plans for t in b["tools"])

    console.ask("/remember Ana prefers calls after 10am", containing="Noted")
    model.answer({"content": "After 10am [1]."})
    answered = console.ask("/ask when does Ana like calls?", containing="After 10am")
    assert model.requests[-1]["body"]["model"] == "deputy-light", answered

    spend = console.ask("/budget", containing="By task this month")
    line = next(x for x in spend.text.splitlines() if x.startswith("By task this month"))
    assert "plan $" in line and "on deputy-main" in line and "ask $" in line and "on deputy-light" in line, spend.text
