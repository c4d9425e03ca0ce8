"""Telegram: commands, plain text and inline-keyboard clicks, through python-telegram-bot.

With TELEGRAM_PUBLIC_URL set, Telegram posts updates to /telegram/webhook on the gateway's own server
(secret header checked in constant time, 403 otherwise, 429 while a source keeps trying; 200 only
once the update is durable in Redis). Without it, Deputy long-polls getUpdates and confirms an offset
only after that update is durable."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from typing import Awaitable, Callable

from aiohttp import web
from redis.exceptions import RedisError
from telegram import CallbackQuery, Update
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, Application, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from agents.intents.commands import COMMANDS
from bot.channels.card_places import CardPlaces
from bot.channels.telegram_cards import ButtonTokens
from bot.channels.telegram_menu import MENU_NAME, command_menu
from bot.channels.telegram_polling import TelegramPoller
from bot.channels.telegram_sender import TelegramSender
from bot.gateway import Gateway
from kernel.messages import Decision, Inbound, Reply
from bot.refusals import Refusals, http_refusal
from bot.services import ChannelParts, Services
from memory.events import EventLog

log = logging.getLogger("deputy.telegram")

CHANNEL = "telegram"
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message", "callback_query"]
CLICK_ANSWERS = {
    "accepted": ("Got it.", False),
    "duplicate": ("Already received.", False),
    "refused": ("Only the operator can decide this. Nothing was changed.", True),
}
INVALID_BUTTON = "This button is not valid (any more). Nothing was changed."
Context = ContextTypes.DEFAULT_TYPE


def webhook_secret(token: str, configured: str | None) -> str:
    """TELEGRAM_WEBHOOK_SECRET, or one derived from the bot token (stable across restarts, never sent back)."""
    return configured or hashlib.sha256(f"deputy-webhook:{token}".encode()).hexdigest()


class TelegramChannel:
    """PTB handlers that translate updates into Inbound / Decision for the gateway, and the webhook."""

    def __init__(
        self,
        application: Application,  # type: ignore[type-arg]
        gateway: Gateway,
        tokens: ButtonTokens,
        events: EventLog,
        refusals: Refusals,
        secret: str,
        public_url: str | None,
    ) -> None:
        self.application = application
        self.gateway = gateway
        self.tokens = tokens
        self.events = events
        self.refusals = refusals
        self.secret = secret
        self.public_url = public_url
        self._initialized = False
        self._init_lock = asyncio.Lock()
        # handler errors (Redis down) go to PTB's error handler; the webhook or poller re-raises them
        self._failures: dict[int, BaseException] = {}
        private = filters.UpdateType.MESSAGE
        names = [n for c in COMMANDS for n in (c.name, *c.aliases) if MENU_NAME.fullmatch(n)]
        application.add_handler(CommandHandler(names, self.on_text, filters=private))
        application.add_handler(MessageHandler(private & filters.TEXT, self.on_text))
        application.add_handler(CallbackQueryHandler(self.on_callback))
        application.add_error_handler(self.on_error)

    # --- lifecycle

    async def ready(self) -> None:
        """Initialise PTB (getMe) once, on first use."""
        async with self._init_lock:
            if not self._initialized:
                await self.application.initialize()
                self._initialized = True

    async def close(self) -> None:
        if self._initialized:
            await self.application.shutdown()
            self._initialized = False

    async def process(self, update: Update) -> None:
        """Run the handlers on one update; raises if it could not be made durable."""
        await self.ready()
        await self.application.process_update(update)
        error = self._failures.pop(update.update_id, None)
        if error is None:
            return
        if isinstance(error, RedisError):
            raise error  # not durable: Telegram must deliver it again
        # a bug of ours on this one update must not hold back every later one (Telegram keeps order)
        log.error("telegram: update %s failed and is let go: %r", update.update_id, error, exc_info=error)
        await asyncio.to_thread(self.events.record, f"tg-{update.update_id}", "inbound.failed", "telegram", None,
                                channel=CHANNEL, update_id=update.update_id, error=repr(error)[:300])

    # --- handlers

    async def on_text(self, update: Update, context: Context) -> None:
        message, user, chat = update.effective_message, update.effective_user, update.effective_chat
        if message is None or user is None or chat is None or not message.text or user.is_bot:
            return
        topic = message.message_thread_id if message.is_topic_message else None
        inbound = Inbound(
            channel=CHANNEL,
            event_id=str(update.update_id),
            user_id=str(user.id),
            user_name=user.username or user.full_name,
            thread_id=f"{chat.id}:{topic}" if topic else str(chat.id),
            text=message.text,
            reply_to={"chat_id": str(chat.id), "message_id": str(message.message_id), "thread": str(topic or "")},
        )
        await self.gateway.accept(inbound)

    async def on_callback(self, update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None
        pressed = await self.tokens.resolve(query.data or "")
        message = query.message
        if pressed is None or message is None:
            # forged or expired: counted, never recorded per click (anyone who sees a card can click it)
            await self.refusals.refuse(CHANNEL, "unknown button", f"{CHANNEL}:{query.from_user.id}")
            await self._answer(query, INVALID_BUTTON, alert=True)
            return
        chat = message.chat
        topic = getattr(message, "message_thread_id", None) if getattr(message, "is_topic_message", False) else None
        decision = Decision(
            channel=CHANNEL,
            event_id=str(update.update_id),
            user_id=str(query.from_user.id),
            user_name=query.from_user.username or query.from_user.full_name,
            thread_id=f"{chat.id}:{topic}" if topic else str(chat.id),
            action=pressed.action,
            value=pressed.value,
            reply_to={
                "chat_id": str(chat.id), "message_id": str(message.message_id), "thread": str(topic or ""),
                "card_message_id": str(message.message_id),
                "decided_by": query.from_user.username or query.from_user.full_name, "decided_at": str(int(time.time())),
            },
        )
        ack = await self.gateway.decide(decision)
        text, alert = CLICK_ANSWERS[ack.status]
        await self._answer(query, text, alert)

    async def on_error(self, update: object, context: Context) -> None:
        if isinstance(update, Update) and context.error is not None:
            self._failures[update.update_id] = context.error
        else:
            log.error("telegram: error outside an update: %s", context.error)

    async def _answer(self, query: CallbackQuery, text: str, alert: bool) -> None:
        # the click is already durable (or refused); a failed answer only leaves the spinner a while longer
        try:
            await query.answer(text, show_alert=alert)
        except TelegramError as err:
            log.warning("telegram: could not answer callback %s: %s", query.id, err)

    # --- webhook

    async def webhook(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            verdict = await self.refusals.refuse(CHANNEL, "wrong secret", request.remote)
            raise http_refusal(verdict, web.HTTPForbidden, text="wrong or missing secret token")
        try:
            data = await request.json(loads=json.loads)
        except (ValueError, UnicodeDecodeError):
            raise web.HTTPBadRequest(text="body must be a JSON Update")
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            raise web.HTTPBadRequest(text="body must be a JSON Update")
        await self.ready()
        try:
            update = Update.de_json(data, self.application.bot)
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as err:
            # Telegram would redeliver it forever (holding back every later update): log it and let it go
            log.error("telegram: dropping update %s that python-telegram-bot cannot read: %s", data["update_id"], err)
            await asyncio.to_thread(self.events.record, f"tg-{data['update_id']}", "inbound.unreadable", "telegram", None,
                                    channel=CHANNEL, update_id=data["update_id"], error=str(err)[:300])
            return web.Response(text="ok")
        await self.process(update)
        return web.Response(text="ok")

    async def serve_webhook(self) -> None:
        """Background task: register the webhook (and the command menu) with Telegram, retrying until it works."""
        assert self.public_url
        url = self.public_url.rstrip("/")
        url = url if url.endswith(WEBHOOK_PATH) else url + WEBHOOK_PATH
        try:
            await self.until_done("set the webhook", lambda: self.setup(url))
            log.info("telegram: webhook set to %s", url)
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def serve_polling(self) -> None:
        """Background task, without a public URL: the webhook removed, then getUpdates until cancelled."""
        try:
            await self.until_done("start polling", lambda: self.setup(None))
            await TelegramPoller(self.application.bot, self.process, ALLOWED_UPDATES).run()
        finally:
            await self.close()

    async def setup(self, webhook_url: str | None) -> None:
        """The command menu, and the webhook registered (or removed, for polling)."""
        await self.ready()
        bot = self.application.bot
        await bot.set_my_commands(command_menu())
        if webhook_url:
            await bot.set_webhook(webhook_url, secret_token=self.secret, allowed_updates=ALLOWED_UPDATES)
        else:
            await bot.delete_webhook(drop_pending_updates=False)

    async def until_done(self, what: str, step: Callable[[], Awaitable[None]]) -> None:
        """Retry a setup step with backoff until Telegram takes it."""
        delay = 1.0
        while True:
            try:
                await step()
                return
            except TelegramError as err:
                log.warning("telegram: could not %s (%s); trying again in %.0f s", what, err, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60)


def telegram_channel(services: Services) -> ChannelParts | None:
    """The Telegram channel, or None when TELEGRAM_BOT_TOKEN is not set."""
    settings = services.settings
    if settings.telegram.bot_token is None:
        return None
    token = settings.telegram.bot_token.get_secret_value()
    application = (
        Application.builder()
        .token(token)
        .base_url(settings.telegram.api_url)
        .updater(None)
        # Telegram's flood limits (30 msg/s overall, 20/min per group); a 429 is waited out and retried
        .rate_limiter(AIORateLimiter(max_retries=3))
        .build()
    )
    configured = settings.telegram.webhook_secret.get_secret_value() if settings.telegram.webhook_secret else None
    tokens = ButtonTokens(services.aredis, settings.workspace)
    channel = TelegramChannel(
        application, services.gateway, tokens, services.events, services.refusals,
        secret=webhook_secret(token, configured), public_url=settings.telegram.public_url,
    )
    sender = TelegramSender(application.bot, CardPlaces(services.aredis, settings.workspace, CHANNEL), tokens)

    ready = _ReadySender(channel, sender)
    if settings.telegram.public_url:
        return ChannelParts(name=CHANNEL, routes=[web.post(WEBHOOK_PATH, channel.webhook)], sender=ready,
                            background=[channel.serve_webhook], working=ready.working)
    return ChannelParts(name=CHANNEL, routes=[], sender=ready, background=[channel.serve_polling], working=ready.working)


class _ReadySender:
    """Initialises PTB before the first delivery (replies can come before the first update)."""

    def __init__(self, channel: TelegramChannel, sender: TelegramSender) -> None:
        self.channel = channel
        self.sender = sender

    async def send(self, reply: Reply) -> None:
        await self.channel.ready()
        await self.sender.send(reply)

    async def working(self, inbound: Inbound, trace_id: str) -> None:
        await self.channel.ready()
        await self.sender.working(inbound, trace_id)
