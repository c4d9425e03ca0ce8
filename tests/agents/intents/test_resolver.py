"""Function calling against a local scripted OpenAI-compatible server: what is sent, and what is believed."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from agents.intents.model import IntentWatcher
from agents.intents.recognition import CLARIFY, IntentRecognizer
from agents.intents.registry import load_registry
from agents.intents.resolver import NONE_OF_THESE, LlmResolver
from agents.llm import OpenAiLlm

NOW = datetime(2025, 6, 4, 15, 0, tzinfo=ZoneInfo("Europe/Berlin"))
REGISTRY = load_registry()


def resolver(server) -> LlmResolver:
    return LlmResolver(OpenAiLlm(server.base_url, None, "small", timeout_s=5), "Europe/Berlin")


def test_scripted_tool_call_becomes_intent_slots(openai_server):
    openai_server.answer({"tool_calls": [{"name": "remind", "arguments": {
        "text": "call Ana", "when": "2025-06-06T10:00", "people": ["Ana"]}}]})
    answer = resolver(openai_server).resolve("ana. friday. 10. phone.", REGISTRY, now=NOW)
    assert answer.status == "resolved" and answer.intent == "remind"
    # a time without an offset is read in the operator's zone
    assert answer.slots == {"text": "call Ana", "when": "2025-06-06T10:00+02:00", "people": ["Ana"]}

    body = openai_server.requests[0]["body"]
    tools = {t["function"]["name"]: t["function"] for t in body["tools"]}
    assert set(tools) == {s.name for s in REGISTRY if s.suggest} | {NONE_OF_THESE}
    assert tools["remind"]["parameters"]["required"] == ["text"]
    assert tools["remind"]["parameters"]["additionalProperties"] is False
    assert "2025-06-04" in body["messages"][0]["content"] and "Europe/Berlin" in body["messages"][0]["content"]
    assert body["messages"][1] == {"role": "user", "content": "ana. friday. 10. phone."}


def test_slot_filling_offers_only_the_recognised_intent(openai_server):
    openai_server.answer({"tool_calls": [{"name": "set_budget", "arguments": {"amount": {"value": 40, "currency": "eur"}}}]})
    answer = resolver(openai_server).resolve("budget forty euro", REGISTRY, only="set_budget", now=NOW)
    assert answer.slots == {"action": "set", "amount": {"value": 40.0, "currency": "EUR"}}
    body = openai_server.requests[0]["body"]
    assert [t["function"]["name"] for t in body["tools"]] == ["set_budget", NONE_OF_THESE]
    # the intent is known: the model is told to call it by name (never "required", which llama.cpp refuses)
    assert body["tool_choice"] == {"type": "function", "function": {"name": "set_budget"}}


def test_choosing_an_intent_leaves_the_choice_to_the_model(openai_server):
    openai_server.answer({"tool_calls": [{"name": NONE_OF_THESE, "arguments": {"reason": "unclear"}}]})
    resolver(openai_server).resolve("hm", REGISTRY, now=NOW)
    assert "tool_choice" not in openai_server.requests[0]["body"]


@pytest.mark.parametrize(
    ("call", "why"),
    [
        ({"name": "remind", "arguments": "{not json"}, "not a JSON object"),
        ({"name": "delete_everything", "arguments": {}}, "unknown tool"),
        ({"name": "remind", "arguments": {"text": "x", "when": "next friday-ish"}}, "ISO 8601"),
        ({"name": "remind", "arguments": {"text": "x", "shell": "rm -rf /"}}, "unexpected arguments"),
        ({"name": "remind", "arguments": {"when": "2025-06-06"}}, "text must be"),
        ({"name": "schedule_meeting", "arguments": {"title": "x", "emails": ["not-an-email"]}}, "email addresses"),
        ({"name": "set_budget", "arguments": {"amount": {"value": "lots"}}}, "non-negative number"),
        ({"name": "set_budget", "arguments": {"amount": {"value": 5, "currency": "dollars"}}}, "3-letter"),
    ],
)
def test_malformed_tool_calls_are_invalid_not_believed(openai_server, call: dict, why: str):
    openai_server.answer({"tool_calls": [call]})
    answer = resolver(openai_server).resolve("whatever", REGISTRY, now=NOW)
    assert answer.status == "invalid" and answer.slots is None
    assert why in answer.detail


def test_plain_text_answer_and_none_of_these(openai_server):
    openai_server.answer({"content": "Sure! I'll do that."}, {"tool_calls": [{"name": NONE_OF_THESE, "arguments": {"reason": "weather"}}]})
    assert resolver(openai_server).resolve("hm", REGISTRY).status == "invalid"
    declined = resolver(openai_server).resolve("weather on mars?", REGISTRY)
    assert declined.status == "declined" and declined.detail == "weather"


def test_server_errors_are_unavailable(openai_server):
    openai_server.answer({"status": 500})
    answer = resolver(openai_server).resolve("remind me", REGISTRY)
    assert answer.status == "unavailable" and "500" in answer.detail


# --- the recognizer: local classifier first, the model where it is unsure or slots are needed

def recognizer(watcher: IntentWatcher, server) -> IntentRecognizer:
    return IntentRecognizer(watcher, 0.4, "Europe/Berlin", resolver(server))


def test_low_confidence_text_is_resolved_by_the_model(builtin: IntentWatcher, openai_server):
    openai_server.answer({"tool_calls": [{"name": "add_task", "arguments": {"title": "call the bank"}}]})
    result = recognizer(builtin, openai_server).recognize("bank. call. sometime", NOW)
    assert result.ranking.confidence < 0.4
    assert result.intent.name == "task" and result.intent.source == "llm"
    assert result.intent.slots == {"action": "add", "project": "inbox", "title": "call the bank", "intent": "add_task"}


def test_malformed_answer_falls_back_to_asking(builtin: IntentWatcher, openai_server):
    openai_server.answer({"tool_calls": [{"name": "add_task", "arguments": "{\"title\": "}]})
    result = recognizer(builtin, openai_server).recognize("bank. call. sometime", NOW)
    assert result.intent.name == CLARIFY and result.llm == "invalid"
    assert len(result.intent.slots["candidates"]) == 2


def test_model_down_gives_the_local_answer(builtin: IntentWatcher, openai_server):
    openai_server.answer({"status": 500})
    confident = recognizer(builtin, openai_server).recognize("remind me to call Ana on Friday at 10", NOW)
    assert confident.llm == "unavailable"
    assert confident.intent.name == "remind" and confident.intent.source == "classifier"
    assert confident.intent.slots["when"] == "2025-06-06T10:00+02:00"
    unsure = recognizer(builtin, openai_server).recognize("bank. call. sometime", NOW)
    assert unsure.intent.name == CLARIFY and unsure.llm == "unavailable"


def test_confident_intent_without_slots_never_calls_the_model(builtin: IntentWatcher, openai_server):
    result = recognizer(builtin, openai_server).recognize("show me my open tasks", NOW)
    assert result.intent.name == "task" and result.intent.slots["action"] == "list"
    assert openai_server.requests == []
