"""Language models: one small protocol, one OpenAI-compatible client (OpenAI, Ollama, vLLM ...).

Workers call models synchronously; the gateway never does."""
from __future__ import annotations

import json
from typing import Any, Protocol

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


class Completion(BaseModel):
    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    model: str = ""


class LlmUnavailable(RuntimeError):
    """The model endpoint could not be reached or answered with an error."""


class Llm(Protocol):
    def complete(
        self, messages: list[dict[str, Any]], tools: list[ToolSpec] | None = None, model: str | None = None, purpose: str = ""
    ) -> Completion: ...


class OpenAiLlm:
    """Any OpenAI-compatible chat-completions endpoint, through the official client."""

    def __init__(self, base_url: str, api_key: str | None, model: str, timeout_s: float = 30.0, max_retries: int = 1) -> None:
        from openai import OpenAI

        self.model = model
        self.client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s, max_retries=max_retries)

    def complete(
        self, messages: list[dict[str, Any]], tools: list[ToolSpec] | None = None, model: str | None = None, purpose: str = ""
    ) -> Completion:
        import openai

        request: dict[str, Any] = {"model": model or self.model, "messages": messages}
        if tools:
            request["tools"] = [{"type": "function", "function": t.model_dump()} for t in tools]
        try:
            response = self.client.chat.completions.create(**request)
        except openai.OpenAIError as err:
            raise LlmUnavailable(f"{type(err).__name__}: {err}") from err
        if not response.choices:
            raise LlmUnavailable("the model returned no choices")
        message = response.choices[0].message
        calls = []
        for call in message.tool_calls or []:
            raw = call.function.arguments or ""
            try:
                parsed = json.loads(raw) if raw else {}
            except json.JSONDecodeError:
                parsed = None
            calls.append(ToolCall(name=call.function.name, arguments=parsed if isinstance(parsed, dict) else None, raw_arguments=raw))
        usage = Usage(
            prompt_tokens=getattr(response.usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(response.usage, "completion_tokens", 0) or 0,
        )
        return Completion(text=message.content or "", tool_calls=calls, usage=usage, model=response.model or request["model"])
