"""A local OpenAI-compatible server: records every request, answers from a script.

Script entries (consumed in order; the last one repeats):
  {"content": "text"}                                   a plain answer
  {"tool_calls": [{"name": "x", "arguments": {...}}]}   function calls (arguments may be a raw string)
  {"status": 500} / {"status": 429}                     an HTTP error
  {"embedding_dim": 384}                                 (embeddings endpoint answers with unit vectors)
"""
from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from harness.fakes.threaded_app import ThreadedApp


class ScriptedOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[dict[str, Any]] = [{"content": "ok"}]
        self.usage = {"prompt_tokens": 100, "completion_tokens": 20}
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def answer(self, *entries: dict[str, Any]) -> None:
        self.script = list(entries)

    def _next(self) -> dict[str, Any]:
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append({"path": request.path, "body": body, "headers": dict(request.headers)})
        entry = self._next()
        if "status" in entry:
            return web.json_response({"error": {"message": "scripted failure", "type": "server_error"}}, status=entry["status"])
        message: dict[str, Any] = {"role": "assistant", "content": entry.get("content")}
        if "tool_calls" in entry:
            message["tool_calls"] = [
                {
                    "id": f"call_{i}",
                    "type": "function",
                    "function": {
                        "name": call["name"],
                        "arguments": call["arguments"] if isinstance(call["arguments"], str) else json.dumps(call["arguments"]),
                    },
                }
                for i, call in enumerate(entry["tool_calls"])
            ]
            message["content"] = None
        return web.json_response({
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "scripted"),
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if "tool_calls" in entry else "stop"}],
            "usage": {**self.usage, "total_tokens": sum(self.usage.values())},
        })

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append({"path": request.path, "body": body, "headers": dict(request.headers)})
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dim = 8
        data = []
        for i, text in enumerate(inputs):
            vec = [0.0] * dim
            for ch in str(text):
                vec[ord(ch) % dim] += 1.0
            norm = sum(v * v for v in vec) ** 0.5 or 1.0
            data.append({"object": "embedding", "index": i, "embedding": [v / norm for v in vec]})
        return web.json_response({"object": "list", "data": data, "model": body.get("model"), "usage": {"prompt_tokens": 1, "total_tokens": 1}})

    def start(self) -> "ScriptedOpenAI":
        self._server = ThreadedApp([web.post("/v1/chat/completions", self._chat), web.post("/v1/embeddings", self._embeddings)])
        self.port = self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()
