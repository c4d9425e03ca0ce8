"""Slack: DMs, mentions, thread replies, button clicks and the /deputy command, through slack-bolt.

HTTP mode mounts bolt's AsyncApp at /slack/events on the gateway's aiohttp server (the signature is
checked before bolt parses anything: 401 otherwise, 429 while a source keeps trying); Socket Mode
runs instead when SLACK_APP_TOKEN is set. Listeners run before the response (process_before_response),
so Slack only gets its 200 once the gateway has made the request durable; if Redis is down, bolt
answers 500 and Slack retries."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from typing import Any, Awaitable, Callable

from aiohttp import web
from pydantic import ValidationError
from redis.exceptions import RedisError
from slack_bolt import BoltResponse
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.channels.card_places import CardPlaces
from bot.channels.slack_cards import parse_action_id, unescape
from bot.channels.slack_commands import command_text, command_usage
from bot.channels.slack_members import SlackMembers
from bot.channels.slack_sender import ChannelPacer, SlackSender
from bot.gateway import Gateway
from kernel.messages import Decision, Inbound
from bot.refusals import Refusals, http_refusal
from bot.services import ChannelParts, Services
from kernel.keys import WorkspaceStore

log = logging.getLogger("deputy.slack")

CHANNEL = "slack"
EVENTS_PATH = "/slack/events"
SLASH_COMMAND = "/deputy"
# message subtypes that are a person writing; edits, joins, deletions and bot posts are not
PERSON_SUBTYPES = {None, "thread_broadcast", "file_share"}
THREAD_TTL_S = 30 * 86_400
WORKING = "Working on it…"
_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")


class SlackThreads(WorkspaceStore):
    """Channel threads Deputy takes part in: replies there reach Deputy without a new mention."""


    def join(self, channel: str, thread_ts: str) -> None:
        self.redis.set(self.keys(CHANNEL, "thread", channel, thread_ts), "1", ex=THREAD_TTL_S)

    def joined(self, channel: str, thread_ts: str) -> bool:
        return bool(self.redis.exists(self.keys(CHANNEL, "thread", channel, thread_ts)))


def message_text(text: str, bot_user_id: str | None) -> str:
    """The text a person wrote, without the mention of Deputy and with Slack's escaping undone."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", "", text)
    return unescape(" ".join(text.split()))


def _mentions(text: str, user_id: str | None) -> bool:
    return bool(user_id) and any(m == user_id for m in _MENTION.findall(text or ""))


def _from_bot(event: dict[str, Any]) -> bool:
    return bool(event.get("bot_id")) or event.get("subtype") == "bot_message" or bool(event.get("bot_profile"))


class SlackChannel:
    """Translates bolt listener calls into Inbound / Decision for the gateway; nothing else."""

    def __init__(self, gateway: Gateway, threads: SlackThreads, members: SlackMembers) -> None:
        self.gateway = gateway
        self.threads = threads
        self.members = members

    def register(self, app: AsyncApp) -> None:
        app.event("message")(self.on_message)
        app.event("app_mention")(self.on_mention)
        app.action(re.compile(r".+"))(self.on_action)
        app.command(SLASH_COMMAND)(self.on_command)

    # --- listeners (bolt acks events itself once the listener returns)

    async def on_message(self, event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext) -> None:
        if _from_bot(event) or event.get("subtype") not in PERSON_SUBTYPES or not event.get("user"):
            return
        channel = str(event.get("channel", ""))
        thread_ts = event.get("thread_ts")
        direct = event.get("channel_type") == "im" or channel.startswith("D")
        if not direct:
            # in channels Deputy answers mentions (app_mention carries those) and threads it is part of
            if not thread_ts or _mentions(event.get("text", ""), context.bot_user_id):
                return
        if not direct and not await asyncio.to_thread(self.threads.joined, channel, str(thread_ts)):
            return  # people talking among themselves in a thread Deputy is not part of
        await self.gateway.accept(await self._inbound(body, event, context, thread_ts=thread_ts))

    async def on_mention(self, event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext) -> None:
        channel = str(event.get("channel", ""))
        if _from_bot(event) or channel.startswith("D"):
            return  # a mention in a DM also arrives as a message.im event
        thread_ts = str(event.get("thread_ts") or event["ts"])
        inbound = await self._inbound(body, event, context, thread_ts=thread_ts)
        if (await self.gateway.accept(inbound)).status == "accepted":
            await asyncio.to_thread(self.threads.join, channel, thread_ts)

    async def on_action(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        container = body.get("container") or {}
        message = body.get("message") or {}
        channel = str(container.get("channel_id") or (body.get("channel") or {}).get("id") or "")
        message_ts = str(container.get("message_ts") or message.get("ts") or "")
        thread_ts = str(message.get("thread_ts") or container.get("thread_ts") or "")
        user = body.get("user") or {}
        trigger = body.get("trigger_id") or f"{channel}:{message_ts}:{action.get('action_ts', '')}"
        decision = Decision(
            channel=CHANNEL,
            event_id=f"action:{trigger}",
            user_id=str(user.get("id", "")),
            user_name=str(user.get("username") or user.get("name") or ""),
            thread_id=f"{channel}:{thread_ts}" if thread_ts else channel,
            action=parse_action_id(str(action.get("action_id", ""))),
            value=str(action.get("value", "")),
            reply_to={
                "channel": channel, "thread_ts": thread_ts, "user": str(user.get("id", "")), "private": "1",
                "card_ts": message_ts, "decided_by": str(user.get("id", "")), "decided_at": str(int(time.time())),
            },
        )
        await self.gateway.decide(decision)
        await ack()

    async def on_command(self, ack: AsyncAck, command: dict[str, Any]) -> None:
        channel = str(command.get("channel_id", ""))
        user = str(command.get("user_id", ""))
        typed = unescape(str(command.get("text", "")))
        text = command_text(typed)
        if text is None:
            await ack(text=command_usage(typed.strip()))  # only the person who typed it sees this
            return
        inbound = Inbound(
            channel=CHANNEL,
            event_id=f"command:{command.get('trigger_id', '')}",
            user_id=user,
            user_name=str(command.get("user_name", "")),
            thread_id=channel,
            text=text,
            reply_to={"channel": channel, "thread_ts": "", "user": user},
            timezone=await self._timezone(user),
        )
        ack_ = await self.gateway.accept(inbound)
        # a slash command leaves no message to mark: its (private) acknowledgement is the working sign. A repeat
        # or a refusal gets a bare acknowledgement (bolt takes no text=None)
        if ack_.status == "accepted":
            await ack(text=WORKING)
        else:
            await ack()

    # --- translation

    async def _inbound(self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext, thread_ts: str | None) -> Inbound:
        channel = str(event.get("channel", ""))
        user = str(event.get("user", ""))
        return Inbound(
            channel=CHANNEL,
            event_id=str(body.get("event_id") or f"{channel}:{event.get('ts', '')}"),
            user_id=user,
            thread_id=f"{channel}:{thread_ts}" if thread_ts else channel,
            text=message_text(str(event.get("text", "")), context.bot_user_id),
            # `ts`: the message itself, where the working sign goes
            reply_to={"channel": channel, "thread_ts": str(thread_ts or ""), "user": user, "ts": str(event.get("ts", ""))},
            timezone=await self._timezone(user),
        )

    async def _timezone(self, user: str) -> str:
        # only an operator's zone is worth a users.info call; a stranger's message is refused anyway
        return await self.members.timezone(user) if self.gateway.authorized(CHANNEL, user) else ""


async def answer_error(error: Exception) -> BoltResponse:
    """What Slack is told when a listener fails: 503 (retry) when our store is down, 400 (don't)
    for a signed payload we cannot read; bolt's default would be 500 for both."""
    if isinstance(error, RedisError):
        log.error("slack: redis unavailable, asking Slack to retry: %s", error)
        return BoltResponse(status=503, body="store unavailable; retry")
    if isinstance(error, (KeyError, TypeError, ValueError, AttributeError, IndexError, ValidationError)):
        log.warning("slack: rejected a payload we cannot read (%s: %s)", type(error).__name__, error)
        return BoltResponse(status=400, body="unreadable payload")
    log.exception("slack: listener failed", exc_info=error)
    return BoltResponse(status=500, body="")


def build_bolt_app(services: Services, client: AsyncWebClient) -> AsyncApp:
    settings = services.settings
    secret = settings.slack.signing_secret.get_secret_value() if settings.slack.signing_secret else None
    app = AsyncApp(
        client=client,
        signing_secret=secret,
        # verification is bolt's; without a signing secret only Socket Mode (no HTTP route) is served
        request_verification_enabled=secret is not None,
        process_before_response=True,
        logger=logging.getLogger("deputy.slack.bolt"),
        # middlewares for features Deputy does not use (workflow functions, the Assistant API):
        # each runs on every request
        attaching_function_token_enabled=False,
        attaching_conversation_kwargs_enabled=False,
        ignoring_self_assistant_message_events_enabled=False,
    )
    app.error(answer_error)
    return app


def _signed(verifier: SignatureVerifier, body: bytes, request: web.Request) -> bool:
    try:
        return verifier.is_valid_request(body, dict(request.headers))
    except ValueError:  # a timestamp that is not a number
        return False


def events_route(app: AsyncApp, verifier: SignatureVerifier, refusals: Refusals) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Slack's HTTP requests, checked here before bolt sees them: a forged one is counted (Refusals),
    not parsed. Bolt checks the signature again, which costs one HMAC and guards any other route."""

    async def events(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise http_refusal(await refusals.refuse(CHANNEL, "malformed", request.remote), web.HTTPBadRequest,
                               text="body must be UTF-8")
        if not _signed(verifier, body, request):
            raise http_refusal(await refusals.refuse(CHANNEL, "bad signature", request.remote), web.HTTPUnauthorized,
                               text="invalid request signature")
        try:
            # bolt reads ids out of the payload before it checks the signature, and again to report
            # an error: a shape it cannot read is refused here, queued nowhere
            return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
            log.info("slack: rejected a payload bolt cannot read (%s: %s) from %s", type(err).__name__, err, request.remote)
            raise web.HTTPBadRequest(text="unreadable payload")

    return events


def slack_channel(services: Services) -> ChannelParts | None:
    """The Slack channel, or None when SLACK_BOT_TOKEN and a signing secret or app token are not set."""
    settings = services.settings
    if settings.slack.bot_token is None or (settings.slack.signing_secret is None and settings.slack.app_token is None):
        return None
    client = AsyncWebClient(token=settings.slack.bot_token.get_secret_value(), base_url=settings.slack.api_url)
    app = build_bolt_app(services, client)
    threads = SlackThreads(services.redis, settings.workspace)
    members = SlackMembers(client, services.aredis, settings.workspace)
    SlackChannel(services.gateway, threads, members).register(app)

    async def join_thread(channel: str, ts: str) -> None:
        await asyncio.to_thread(threads.join, channel, ts)

    sender = SlackSender(
        client, CardPlaces(services.aredis, settings.workspace, CHANNEL), ChannelPacer(settings.slack.message_interval_s),
        join_thread=join_thread,
    )

    secret = settings.slack.signing_secret
    routes = [web.post(EVENTS_PATH, events_route(app, SignatureVerifier(secret.get_secret_value()), services.refusals))] if secret else []
    background = []
    if settings.slack.app_token is not None:
        app_token = settings.slack.app_token.get_secret_value()

        async def socket_mode() -> None:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            handler = AsyncSocketModeHandler(app, app_token)
            try:
                await handler.connect_async()
                log.info("slack: connected in Socket Mode")
                await asyncio.Event().wait()
            finally:
                with contextlib.suppress(Exception):
                    await handler.close_async()

        background.append(socket_mode)
    return ChannelParts(name=CHANNEL, routes=routes, sender=sender, background=background, working=members.working)
