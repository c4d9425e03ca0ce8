"""A local model behind OPENAI_BASE_URL, met as a new user meets one, without SMTP: `/do email …` says up front that
email is not set up; a goal the model answers in words gets "I couldn't make a plan for that" with what would help;
`/draft` answers in time and its trace shows the token counts; `/budget` says the local model is free; every request
carries max_tokens and none asks for tool_choice "required"; `deputy check` lists the endpoint's models and says
whether tool calls came back.

Each journey runs against the scripted fake (scripted as llama.cpp's server behaves) and, with `-m real_llm`, against
a real llama-cpp-python server (tests/agents/llm_endpoints.py)."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest

from memory.events import EventLog
from tests.agents.llm_endpoints import Endpoint, fake_endpoint, real_endpoint
from tests.bot.conftest import Deputy, logged_in_deputy

PROSE = ("A: I'm an AI for the purpose of editing and improving written language. Premise: The invoice is paid by ANA "
         "(anetralum), who is responsible for the invoice and has been informed of it. " * 3)
DRAFT = {"tool_calls": [{"name": "write_email", "arguments": {"subject": "Invoice for May", "body": "Hi Ana, here it is."}}]}
MODEL = "smollm2"


@pytest.fixture(scope="module", params=["fake", pytest.param("real", marks=[pytest.mark.real_llm, pytest.mark.timeout(300)])])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    if request.param == "fake":
        yield from fake_endpoint()
    else:
        yield from real_endpoint(tmp_path_factory.mktemp("llama"))


@pytest.fixture
def model(served: Endpoint) -> Iterator[Endpoint]:
    served.requests.clear()
    yield served
    # whatever a journey asked, every request was bounded, and none asked for what llama.cpp answers with HTTP 500
    assert all(isinstance(c.get("max_tokens"), int) and c["max_tokens"] > 0 for c in served.chats())
    assert not [c for c in served.chats() if c.get("tool_choice") == "required"]


@pytest.fixture
def local_settings(redis_url: str, model: Endpoint, monkeypatch: pytest.MonkeyPatch) -> Any:
    """No SMTP, no calendar; the model at the endpoint, under a name no price lists."""
    from kernel.settings import load_settings

    for key, value in {"REDIS_URL": redis_url, "JOB_RETRY_BACKOFF": "0", "JOB_STALL_NOTICE_S": "60",
                       "OPENAI_BASE_URL": model.base_url, "OPENAI_MODEL": MODEL}.items():
        monkeypatch.setenv(key, value)
    return load_settings()


@pytest.fixture
async def deputy(local_settings: Any, redis: Any) -> AsyncIterator[Deputy]:
    async with logged_in_deputy(local_settings, redis) as deputy:
        yield deputy


async def reply_to(deputy: Deputy, text: str) -> dict[str, Any]:
    await deputy.say(text)
    await deputy.work()
    return (await deputy.messages())[-1]


async def test_do_email_without_smtp_says_so_before_asking_the_model(deputy: Deputy, model: Endpoint) -> None:
    hint = await reply_to(deputy, "/do email ana@acme.example that the invoice is paid")
    assert hint["text"].startswith("I would email ana@acme.example that the invoice is paid, but email is not set up"), hint
    assert "SMTP_HOST and SMTP_FROM" in hint["text"] and [b["label"] for b in hint["card"]["buttons"]] == ["Keep as a task"]
    assert not [c for c in model.chats() if c.get("tools")]  # nothing was planned
    # a goal that needs no connector is planned by the model: in words, it is an honest failure
    model.script({"content": PROSE})
    said = await reply_to(deputy, "/do let Ana know the invoice is paid")
    if model.real and said["card"] is not None:
        return  # the real model chose actions: the usual approval card
    text = said["text"]
    assert text.startswith("I couldn't make a plan for that: the model "), text
    assert "email isn't configured (email.send): set SMTP_HOST and SMTP_FROM" in text
    assert "calendar isn't configured (calendar.agenda, calendar.create): set CALDAV_URL" in text
    if not model.real:
        detail = text.split("Detail, the model's reply: “", 1)[1]
        assert detail.startswith("A: I'm an AI") and detail.endswith("…”") and len(detail) < 200
        assert not text.startswith("A: I'm an AI")


async def test_arguments_that_are_not_json_or_a_plan_cut_short_get_the_same_honest_answer(deputy: Deputy,
                                                                                          model: Endpoint) -> None:
    if model.real:
        pytest.skip("a real model's arguments cannot be scripted")
    model.script({"tool_calls": [{"name": "tasks__create", "arguments": '{"title": "Call the bank'}]})
    text = (await reply_to(deputy, "/do remind me to call the bank"))["text"]
    assert text.startswith("I couldn't make a plan for that: the model's arguments for tasks.create were not valid JSON.")
    assert "What would help: asking again, " in text and 'Detail, the model\'s arguments: “{"title": "Call the bank”' in text
    # whole steps, but the answer was cut at max_tokens: a step may be missing, so none is carried out
    model.script({"tool_calls": [{"name": "tasks__create", "arguments": {"title": "Call the bank"}}], "finish_reason": "length",
                  "usage": {"prompt_tokens": 300, "completion_tokens": 800}})
    said = await reply_to(deputy, "/do remind me to call the bank")
    assert said["text"].startswith("I couldn't make a plan for that: the model's answer was cut off at 800 tokens, its limit.")
    assert """LLM_MODELS='{"plan": {"max_tokens": 1600}}'""" in said["text"] and said["card"] is None


async def test_draft_answers_in_time_and_its_trace_shows_the_tokens(deputy: Deputy, model: Endpoint, local_settings: Any,
                                                                    redis: Any) -> None:
    model.script(DRAFT)
    started = time.monotonic()
    drafted = await reply_to(deputy, "/draft ana@acme.example about the invoice for May")
    took = time.monotonic() - started
    assert took < 30 and drafted["card"]["title"] == "Draft email", (took, drafted)
    calls = [e.data for e in EventLog(redis, local_settings.workspace).timeline(drafted["trace_id"]) if e.kind == "llm.call"]
    assert calls, drafted
    for call in calls:
        assert all(isinstance(call[k], int) and call[k] > 0 for k in ("prompt_tokens", "completion_tokens", "max_tokens")), call
        assert call["cost_usd"] == 0 and call["model"]
    spend = (await reply_to(deputy, "/budget"))["text"]
    assert f"local model {calls[0]['model']}: free (not in the price table; set LLM_PRICES to charge it)" in spend, spend


def test_deputy_check_lists_the_model_and_says_whether_tool_calls_came_back(
        local_settings: Any, model: Endpoint, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.cli import main

    model.script({"tool_calls": [{"name": "ping", "arguments": {"ok": True}}]})
    main(["check"])
    shown = capsys.readouterr().out
    endpoint = next(line for line in shown.splitlines() if "model endpoint" in line)
    assert endpoint.startswith("ok ") and f"{model.base_url}: lists " in endpoint, shown
    listed = endpoint.split(": lists ", 1)[1]
    assert MODEL in listed if not model.real else listed.endswith(".gguf"), shown
    tools = next(line for line in shown.splitlines() if " tool calls " in line)
    assert tools.startswith("ok ") and (" yes; " in tools or " no — " in tools) and f"{MODEL} answered in " in tools, shown
    assert f"local model {MODEL}: free" in shown
    [probe] = model.chats()
    assert probe["tool_choice"] == {"type": "function", "function": {"name": "ping"}} and probe["max_tokens"] <= 32
    if not model.real:
        assert " yes; " in tools

    main(["check", "--json"])
    report = json.loads(capsys.readouterr().out)["model endpoint"]
    assert report["tool_calls"] in (True, False) and report["models"] and report["latency_s"] > 0


def test_the_server_refuses_tool_choice_required_which_deputy_never_sends(served: Endpoint) -> None:
    """llama.cpp's server answers HTTP 500 to tool_choice "required"; the fake does the same."""
    body = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "ping"}], "tool_choice": "required",
            "tools": [{"type": "function", "function": {"name": "ping", "description": "ping", "parameters": {"type": "object"}}}]}
    asked = urllib.request.Request(f"{served.base_url}/chat/completions", data=json.dumps(body).encode(),
                                   headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(asked, timeout=60)
    assert refused.value.code == 500
    served.requests.clear()


def test_deputy_check_without_an_endpoint_asks_nothing(redis_url: str, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from bot.cli import main

    monkeypatch.setenv("REDIS_URL", redis_url)
    main(["check"])
    assert "model endpoint     not configured (set OPENAI_BASE_URL" in capsys.readouterr().out
