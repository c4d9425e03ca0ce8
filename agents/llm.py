"""Language models: one small protocol, one OpenAI-compatible client (OpenAI, Ollama, vLLM ...).

Workers call models synchronously; the gateway never does."""
from __future__ import annotations

import json
from typing import Any, Callable, Protocol

from pydantic import BaseModel, Field


class ToolSpec(BaseModel):
    name: str
    description: str
    # JSON schema of the arguments
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class ToolCall(BaseModel):
    name: str
    arguments: dict[str, Any] | None
    # exactly what the model sent; arguments is None when it was not a JSON object
    raw_arguments: str = ""


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # the server reported none (a streamed answer, from a server that leaves usage out): the completion's tokens
    # were counted as its pieces came, and the prompt's are the caller's to estimate
    counted: bool = False


class Completion(BaseModel):
    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    model: str = ""
    # why the model stopped: "stop", "tool_calls", or "length" when the answer was cut at max_tokens
    finish_reason: str = ""

    @property
    def cut(self) -> bool:
        return self.finish_reason == "length"


class LlmUnavailable(RuntimeError):
    """The model endpoint could not be reached or answered with an error."""

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        # a timeout, a lost connection, 429 or a server error may pass; a refused request (400, 401, 404) will not
        self.retryable = retryable


class LlmTimeout(LlmUnavailable):
    """No answer (or, streaming, no next piece of it) within the client's timeout."""

    def __init__(self, timeout_s: float, tries: int = 1) -> None:
        super().__init__(f"no answer within {timeout_s:g} s" + (f", tried {tries} times" if tries > 1 else ""), retryable=True)
        self.timeout_s = timeout_s


# What the model has written so far, while it streams: its text, or the arguments of the tool it is calling.
Progress = Callable[[str], None]


class Llm(Protocol):
    def complete(
        self, messages: list[dict[str, Any]], tools: list[ToolSpec] | None = None, model: str | None = None, purpose: str = "",
        *, max_tokens: int | None = None, tool_choice: str | None = None, on_delta: Progress | None = None,
    ) -> Completion:
        """`max_tokens` bounds the answer; `tool_choice` names the one tool the model must call (never "required",
        which llama.cpp's server answers with HTTP 500); `on_delta` streams the answer as it is written."""
        ...


class OpenAiLlm:
    """Any OpenAI-compatible chat-completions endpoint, through the official client. It tries each call once:
    trying again is agents/retrying_llm.py's, where every retry is on the record."""

    def __init__(self, base_url: str, api_key: str | None, model: str, timeout_s: float = 60.0, max_tokens: int = 1024) -> None:
        from openai import OpenAI

        self.model = model
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens
        self.client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s, max_retries=0)

    def complete(
        self, messages: list[dict[str, Any]], tools: list[ToolSpec] | None = None, model: str | None = None, purpose: str = "",
        *, max_tokens: int | None = None, tool_choice: str | None = None, on_delta: Progress | None = None,
    ) -> Completion:
        import openai

        request: dict[str, Any] = {"model": model or self.model, "messages": messages, "max_tokens": max_tokens or self.max_tokens}
        if tools:
            request["tools"] = [{"type": "function", "function": t.model_dump()} for t in tools]
            if tool_choice:
                request["tool_choice"] = {"type": "function", "function": {"name": tool_choice}}
        try:
            completion = self._answer(request) if on_delta is None else self._stream(request, on_delta)
        except openai.APITimeoutError as err:
            raise LlmTimeout(self.timeout_s) from err
        except openai.APIStatusError as err:
            raise LlmUnavailable(f"{type(err).__name__}: {err}", retryable=err.status_code == 429 or err.status_code >= 500) from err
        except openai.APIConnectionError as err:
            raise LlmUnavailable(f"{type(err).__name__}: {err}", retryable=True) from err
        except openai.OpenAIError as err:
            raise LlmUnavailable(f"{type(err).__name__}: {err}") from err
        if completion.usage.completion_tokens >= request["max_tokens"] and not completion.cut:
            # llama.cpp's server calls a tool call cut at max_tokens "tool_calls": the count says it was cut
            completion.finish_reason = "length"
        return completion

    def _answer(self, request: dict[str, Any]) -> Completion:
        response = self.client.chat.completions.create(**request)
        if not response.choices:
            raise LlmUnavailable("the model returned no choices")
        choice = response.choices[0]
        message = choice.message
        usage = Usage(
            prompt_tokens=getattr(response.usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(response.usage, "completion_tokens", 0) or 0,
        )
        calls = [(call.function.name, call.function.arguments or "") for call in message.tool_calls or []]
        return Completion(text=message.content or "", tool_calls=tool_calls(calls), usage=usage,
                          model=response.model or request["model"], finish_reason=choice.finish_reason or "")

    def _stream(self, request: dict[str, Any], on_delta: Progress) -> Completion:
        """The answer piece by piece, each shown to `on_delta` as it comes; usage from the last chunk where the
        server sends it (stream_options), else the pieces counted."""
        text, finish, model, pieces = "", "", "", 0
        calls: dict[int, tuple[str, str]] = {}
        usage: Any = None
        stream = self.client.chat.completions.create(**request, stream=True, stream_options={"include_usage": True})
        with stream:
            for chunk in stream:
                model = chunk.model or model
                usage = chunk.usage or usage
                for choice in chunk.choices:
                    delta = choice.delta
                    finish = choice.finish_reason or finish
                    if delta.content:
                        text, pieces = text + delta.content, pieces + 1
                    for call in delta.tool_calls or []:
                        name, args = calls.get(call.index, ("", ""))
                        fn = call.function
                        # llama.cpp repeats the name in every piece; OpenAI sends it once
                        calls[call.index] = (name or (fn.name if fn else "") or "", args + ((fn.arguments or "") if fn else ""))
                        pieces += bool(fn and fn.arguments)
                    if delta.content or delta.tool_calls:
                        on_delta(text or next(iter(calls.values()), ("", ""))[1])
        # a piece is about a token; the server never writes more than max_tokens, so neither does the count
        counted = Usage(completion_tokens=min(pieces, request["max_tokens"]), counted=True)
        used = Usage(prompt_tokens=usage.prompt_tokens or 0, completion_tokens=usage.completion_tokens or 0) if usage else counted
        return Completion(text=text, tool_calls=tool_calls([calls[i] for i in sorted(calls)]), usage=used,
                          model=model or request["model"], finish_reason=finish)


def tool_calls(calls: list[tuple[str, str]]) -> list[ToolCall]:
    """The calls as the model sent them: (name, raw arguments) → ToolCall, arguments None where not a JSON object."""
    typed = []
    for name, raw in calls:
        try:
            parsed = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            parsed = None
        typed.append(ToolCall(name=name, arguments=parsed if isinstance(parsed, dict) else None, raw_arguments=raw))
    return typed
