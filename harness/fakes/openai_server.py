"""A local OpenAI-compatible server: records every request, answers from a script.

Script entries (consumed in order; the last one repeats):
  {"content": "text"}                                   a plain answer
  {"tool_calls": [{"name": "x", "arguments": {...}}]}   function calls (arguments may be a raw string)
  {"status": 500} / {"status": 429}                     an HTTP error
  {"delay_s": 2, ...}                                   the answer after a wait (a model slower than the client's timeout)
  {"finish_reason": "length", ...}                      an answer cut at max_tokens (content or arguments cut short)
  {"usage": {"prompt_tokens": 9, "completion_tokens": 600}, ...}   the usage reported for this answer
  {"embedding_dim": 384}                                 (embeddings endpoint answers with unit vectors)
A prose answer where tools were offered ({"content": ...}) is what weak local models often give.
`refuse_required = True` answers HTTP 500 to tool_choice "required", as llama.cpp's server does; GET /v1/models
lists `models`.
A request with "stream": true is answered as server-sent events: the content word by word, a tool call's arguments
a few characters at a time ({"chunk_delay_s": 0.05} between pieces), then the finish reason and, when the request
asks for it (stream_options.include_usage), the usage; {"stream_usage": false} leaves it out, as llama.cpp's server does.
"""
from __future__ import annotations

import asyncio
import json
import re
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
        self.refuse_required = False
        self.models = ["scripted"]

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
        if self.refuse_required and body.get("tool_choice") == "required":
            return web.json_response({"error": {"message": "", "type": "internal_server_error"}}, status=500)
        entry = self._next()
        if entry.get("delay_s"):
            await asyncio.sleep(entry["delay_s"])
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
        finish = entry.get("finish_reason") or ("tool_calls" if "tool_calls" in entry else "stop")
        if body.get("stream"):
            return await self._stream(request, body, entry, message, finish)
        usage = entry.get("usage") or self.usage
        return web.json_response({
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "scripted"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {**usage, "total_tokens": sum(usage.values())},
        })

    async def _stream(self, request: web.Request, body: dict[str, Any], entry: dict[str, Any], message: dict[str, Any],
                      finish: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        head = {"id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body.get("model", "scripted")}

        async def send(choices: list[dict[str, Any]], **extra: Any) -> None:
            await response.write(f"data: {json.dumps({**head, 'choices': choices, **extra})}\n\n".encode())

        pieces: list[dict[str, Any]] = [{"role": "assistant"}]
        pieces += [{"content": word} for word in re.findall(r"\s*\S+", message.get("content") or "")]
        for i, call in enumerate(message.get("tool_calls") or []):
            fn = call["function"]
            pieces.append({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                           "function": {"name": fn["name"], "arguments": ""}}]})
            pieces += [{"tool_calls": [{"index": i, "function": {"arguments": fn["arguments"][at:at + 8]}}]}
                       for at in range(0, len(fn["arguments"]), 8)]
        for delta in pieces:
            await send([{"index": 0, "delta": delta, "finish_reason": None}])
            if entry.get("chunk_delay_s"):
                await asyncio.sleep(entry["chunk_delay_s"])
        await send([{"index": 0, "delta": {}, "finish_reason": finish}])
        usage = entry.get("usage") or self.usage
        if (body.get("stream_options") or {}).get("include_usage") and entry.get("stream_usage", True):
            await send([], usage={**usage, "total_tokens": sum(usage.values())})
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

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

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": m, "object": "model", "owned_by": "me"} for m in self.models]})

    def start(self) -> "ScriptedOpenAI":
        self._server = ThreadedApp([web.post("/v1/chat/completions", self._chat), web.post("/v1/embeddings", self._embeddings),
                                    web.get("/v1/models", self._models)])
        self.port = self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()
