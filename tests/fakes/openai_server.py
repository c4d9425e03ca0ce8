"""A local OpenAI-compatible server: records every request, answers from a script.

Script entries (consumed in order; the last one repeats):
  {"content": "text"}                                   a plain answer
  {"tool_calls": [{"name": "x", "arguments": {...}}]}   function calls (arguments may be a raw string)
  {"status": 500} / {"status": 429}                     an HTTP error
  {"embedding_dim": 384}                                 (embeddings endpoint answers with unit vectors)
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from aiohttp import web


class ScriptedOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[dict[str, Any]] = [{"content": "ok"}]
        self.usage = {"prompt_tokens": 100, "completion_tokens": 20}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
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
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.add_routes([web.post("/v1/chat/completions", self._chat), web.post("/v1/embeddings", self._embeddings)])
            self._runner = web.AppRunner(app)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            self._loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop and self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)
