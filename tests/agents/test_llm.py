import pytest

from agents.llm import LlmUnavailable, OpenAiLlm, ToolSpec


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
        OpenAiLlm(openai_server.base_url, None, "small", max_retries=0).complete([{"role": "user", "content": "hi"}])
