import pytest

from agents.llm import LlmTimeout, LlmUnavailable, OpenAiLlm, ToolSpec, Usage


def test_tool_calls_and_usage_come_back_typed(openai_server):
    openai_server.answer({"tool_calls": [{"name": "remember", "arguments": {"text": "x"}}]}, {"tool_calls": [{"name": "ask", "arguments": "{not json"}]})
    llm = OpenAiLlm(openai_server.base_url, None, "small")
    first = llm.complete([{"role": "user", "content": "hi"}], tools=[ToolSpec(name="remember", description="keep a note")])
    assert first.tool_calls[0].name == "remember" and first.tool_calls[0].arguments == {"text": "x"}
    assert first.usage.prompt_tokens == 100
    assert openai_server.requests[0]["body"]["tools"][0]["function"]["name"] == "remember"
    second = llm.complete([{"role": "user", "content": "hi"}])
    assert second.tool_calls[0].arguments is None and second.tool_calls[0].raw_arguments == "{not json"


def test_server_errors_become_llm_unavailable(openai_server):
    openai_server.answer({"status": 500})
    with pytest.raises(LlmUnavailable):
        OpenAiLlm(openai_server.base_url, None, "small").complete([{"role": "user", "content": "hi"}])


HI = [{"role": "user", "content": "hi"}]
EMAIL = ToolSpec(name="write_email", description="the email")


def test_every_request_carries_max_tokens_and_a_named_tool_choice_only_with_tools(openai_server):
    llm = OpenAiLlm(openai_server.base_url, None, "small", max_tokens=300)
    llm.complete(HI)
    llm.complete(HI, max_tokens=40, tools=[EMAIL], tool_choice="write_email")
    llm.complete(HI, tool_choice="write_email")  # nothing to choose from: no choice is sent
    first, named, bare = (r["body"] for r in openai_server.requests)
    assert (first["max_tokens"], named["max_tokens"], bare["max_tokens"]) == (300, 40, 300)
    assert named["tool_choice"] == {"type": "function", "function": {"name": "write_email"}}
    assert "tool_choice" not in first and "tool_choice" not in bare


def test_an_answer_cut_at_max_tokens_says_so(openai_server):
    openai_server.answer(
        {"content": "Dear Ana, about the", "finish_reason": "length"},
        # llama.cpp's server calls a tool call cut at max_tokens "tool_calls"; the count gives it away
        {"tool_calls": [{"name": "write_email", "arguments": '{"subject": "Inv'}], "usage": {"prompt_tokens": 9, "completion_tokens": 8}},
        {"content": "Done."},
    )
    llm = OpenAiLlm(openai_server.base_url, None, "small")
    prose = llm.complete(HI, max_tokens=8)
    call = llm.complete(HI, max_tokens=8, tools=[EMAIL])
    whole = llm.complete(HI, max_tokens=100)
    assert (prose.finish_reason, prose.cut, prose.text) == ("length", True, "Dear Ana, about the")
    assert call.cut and call.tool_calls[0].arguments is None
    assert (whole.finish_reason, whole.cut) == ("stop", False)


def test_a_streamed_answer_is_shown_as_it_grows(openai_server):
    body = {"subject": "Invoice 42", "body": "Hi Ana,\n\nthe invoice is paid.\n\nBest"}
    openai_server.answer({"tool_calls": [{"name": "write_email", "arguments": body}], "usage": {"prompt_tokens": 50, "completion_tokens": 21}})
    seen: list[str] = []
    completion = OpenAiLlm(openai_server.base_url, None, "small").complete(HI, tools=[EMAIL], tool_choice="write_email", on_delta=seen.append)

    request = openai_server.requests[0]["body"]
    assert request["stream"] is True and request["stream_options"] == {"include_usage": True}
    assert len(seen) > 3 and all(later.startswith(earlier) for earlier, later in zip(seen, seen[1:]))
    assert completion.tool_calls[0].arguments == body and completion.finish_reason == "tool_calls"
    assert completion.usage == Usage(prompt_tokens=50, completion_tokens=21)


def test_a_stream_without_usage_is_counted(openai_server):
    openai_server.answer({"content": "one two three four", "stream_usage": False})
    seen: list[str] = []
    completion = OpenAiLlm(openai_server.base_url, None, "small").complete(HI, on_delta=seen.append)
    assert seen[-1] == completion.text == "one two three four"
    assert completion.usage == Usage(prompt_tokens=0, completion_tokens=4, counted=True)
    # a count never passes max_tokens (the server cannot have written more): it is a cut answer
    bounded = OpenAiLlm(openai_server.base_url, None, "small").complete(HI, max_tokens=3, on_delta=seen.append)
    assert bounded.usage.completion_tokens == 3 and bounded.cut


def test_a_slow_answer_times_out_once_without_a_hidden_retry(openai_server):
    openai_server.answer({"delay_s": 1.5, "content": "late"})
    with pytest.raises(LlmTimeout) as timed_out:
        OpenAiLlm(openai_server.base_url, None, "small", timeout_s=0.3).complete(HI)
    assert timed_out.value.timeout_s == 0.3 and timed_out.value.retryable
    assert len(openai_server.requests) == 1
