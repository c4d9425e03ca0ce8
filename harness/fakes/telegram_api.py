"""A local Telegram Bot API server on loopback: records every call, answers the way Telegram does,
serves getUpdates from a queue (confirming offsets as Telegram does) and fails on request (429 with
retry_after, 500, 400) so retries can be tested. python-telegram-bot reaches it through TELEGRAM_API_URL."""
from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT = {"id": 4242, "is_bot": True, "first_name": "Deputy", "username": "deputy_test_bot",
       "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    status: int
    at: float = field(default_factory=time.monotonic)
    # what the fake answered (for a 200): a sent message's message_id is only known from here
    response: Any = None


def _decode(value: str) -> Any:
    # PTB sends form fields; everything that is not a plain string is JSON-encoded
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if value[:1] in "{[" or value in ("true", "false"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class FakeTelegramApi:
    def __init__(self, token: str = "123456:TEST-token") -> None:
        self.token = token
        self.calls: list[Call] = []
        self.failures: dict[str, list[tuple[int, str, int | None]]] = {}
        self.updates: list[dict[str, Any]] = []
        self.offsets: list[int | None] = []
        self._message_ids = itertools.count(500)
        self._new_update = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    def fail(self, method: str, status: int = 429, description: str = "Too Many Requests: retry after 1", retry_after: int | None = 1, times: int = 1) -> None:
        self.failures.setdefault(method, []).extend([(status, description, retry_after)] * times)

    def calls_to(self, method: str, ok_only: bool = True) -> list[Call]:
        return [c for c in self.calls if c.method == method and (c.status == 200 or not ok_only)]

    async def queue_update(self, update: dict[str, Any]) -> None:
        async with self._new_update:
            self.updates.append(update)
            self._new_update.notify_all()

    async def start(self) -> "FakeTelegramApi":
        app = web.Application()
        app.add_routes([web.post("/bot{token}/{method}", self._api)])
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.content_type == "application/json":
            params = await request.json() if request.can_read_body else {}
        else:
            params = {}
            for k, v in (await request.post()).items():
                # uploaded files (sendPhoto) are recorded by name and size
                params[k] = _decode(v) if isinstance(v, str) else {"filename": v.filename, "size": len(v.file.read())}
        if request.match_info["token"] != self.token:
            self.calls.append(Call(method, params, 401))
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        queued = self.failures.get(method)
        if queued:
            status, description, retry_after = queued.pop(0)
            self.calls.append(Call(method, params, status))
            body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
            if retry_after is not None and status == 429:
                body["parameters"] = {"retry_after": retry_after}
            return web.json_response(body, status=status)
        if method == "getUpdates":
            self.calls.append(Call(method, params, 200))
            return web.json_response({"ok": True, "result": await self._get_updates(params)})
        call = Call(method, params, 200, response=self._answer(method, params))
        self.calls.append(call)
        return web.json_response({"ok": True, "result": call.response})

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = params.get("offset")
        self.offsets.append(offset)
        if isinstance(offset, int):
            # as Telegram does: asking with an offset confirms every earlier update for good
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        timeout = min(float(params.get("timeout", 0) or 0), 1.0)
        async with self._new_update:
            if not self.updates and timeout:
                try:
                    await asyncio.wait_for(self._new_update.wait_for(lambda: bool(self.updates)), timeout)
                except asyncio.TimeoutError:
                    pass
        return list(self.updates)

    def _answer(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return BOT
        if method in ("sendMessage", "editMessageText", "editMessageReplyMarkup"):
            chat_id = params.get("chat_id")
            message: dict[str, Any] = {
                "message_id": params.get("message_id") or next(self._message_ids),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private" if isinstance(chat_id, int) and chat_id > 0 else "supergroup"},
                "from": BOT,
                "text": params.get("text", ""),
            }
            if params.get("reply_markup"):
                message["reply_markup"] = params["reply_markup"]
            if method != "sendMessage":
                message["edit_date"] = int(time.time())
            return message
        if method == "sendPhoto":
            return {"message_id": next(self._message_ids), "date": int(time.time()), "from": BOT,
                    "chat": {"id": params.get("chat_id"), "type": "private"},
                    "photo": [{"file_id": "photo-1", "file_unique_id": "u-photo-1", "width": 160, "height": 48}]}
        return True
