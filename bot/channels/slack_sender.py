"""Delivering replies to Slack: new messages in the right thread, in-place card updates, private notices.

Slack allows about one message per second per channel and answers 429 with Retry-After beyond that;
the pacer keeps us under the first and honours the second, for the whole channel."""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.channels import PermanentDeliveryError
from bot.channels.card_places import CardPlaces
from bot.channels.slack_cards import card_blocks, escape
from kernel.messages import Reply

log = logging.getLogger("deputy.slack")

# errors no retry can fix: the operator must change the app's setup (the message says which)
PERMANENT_ERRORS = {
    "channel_not_found": "the channel does not exist or the app cannot see it",
    "not_in_channel": "invite the Deputy app to the channel (/invite @Deputy)",
    "is_archived": "the channel is archived",
    "invalid_auth": "SLACK_BOT_TOKEN is not valid; copy the Bot User OAuth Token again",
    "not_authed": "SLACK_BOT_TOKEN is missing",
    "account_inactive": "the app was uninstalled or its token revoked; reinstall it",
    "token_revoked": "the app's token was revoked; reinstall it",
    "missing_scope": "add the scope named in the error to the app (see slack/manifest.yml) and reinstall",
    "msg_too_long": "the message is too long for Slack",
    "invalid_blocks": "Slack rejected the card's blocks",
    "user_not_in_channel": "the person is not in that channel",
}
# what chat.update answers when the card message is gone: post the update as a new message instead
GONE_ERRORS = {"message_not_found", "cant_update_message", "edit_window_closed"}


class ChannelPacer:
    """At most one message per `interval_s` per channel; a 429 pushes that channel's next slot back."""

    def __init__(
        self,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self.sleep = sleep
        self._next: dict[str, float] = {}

    async def wait(self, channel: str) -> None:
        # the slot is reserved before sleeping (no await in between), so concurrent senders queue up
        now = self.clock()
        slot = max(now, self._next.get(channel, 0.0))
        self._next[channel] = slot + self.interval_s
        if slot > now:
            await self.sleep(slot - now)

    def defer(self, channel: str, seconds: float) -> None:
        self._next[channel] = max(self._next.get(channel, 0.0), self.clock() + seconds)


def _retry_after(err: SlackApiError) -> float:
    headers = getattr(err.response, "headers", None) or {}
    try:
        return max(0.0, float(headers.get("Retry-After", headers.get("retry-after", 1))))
    except (TypeError, ValueError):
        return 1.0


def _error_code(err: SlackApiError) -> str:
    data = getattr(err.response, "data", None)
    return str(data.get("error", "")) if isinstance(data, dict) else ""


class SlackSender:
    """The Slack channel's Sender: one reply, delivered once, through the Web API."""

    def __init__(self, client: AsyncWebClient, places: CardPlaces, pacer: ChannelPacer, rate_limit_retries: int = 3,
                 join_thread: Callable[[str, str], Awaitable[None]] | None = None) -> None:
        self.client = client
        self.places = places
        self.pacer = pacer
        self.rate_limit_retries = rate_limit_retries
        # called with (channel, ts) for each new top-level post in a channel: replies under it are for Deputy
        self.join_thread = join_thread

    async def send(self, reply: Reply) -> None:
        to = reply.reply_to
        channel = to.get("channel", "")
        if not channel:
            raise PermanentDeliveryError(f"reply {reply.reply_id} has no Slack channel to go to")
        thread_ts = to.get("thread_ts") or None
        if to.get("user") and (reply.reply_id.endswith(".refused") or (to.get("private") and reply.card is None)):
            # refusals and answers to a click concern only the person who acted
            await self._call(channel, "chat_postEphemeral", channel=channel, user=to["user"], text=reply.text, thread_ts=thread_ts)
            return
        if reply.updates_card and reply.card is not None:
            if await self._update(reply, channel):
                return
        await self._post(reply, channel, thread_ts)

    async def _post(self, reply: Reply, channel: str, thread_ts: str | None) -> None:
        kwargs: dict[str, Any] = {"channel": channel, "text": reply.text or (reply.card.title if reply.card else ""), "thread_ts": thread_ts}
        if reply.card is not None:
            kwargs["blocks"] = card_blocks(reply.card, reply.text, reply.reply_to.get("decided_by", ""), reply.reply_to.get("decided_at", ""))
        else:
            kwargs["text"] = escape(reply.text)
        response = await self._call(channel, "chat_postMessage", **kwargs)
        posted_in = str(response.get("channel") or channel)
        if thread_ts is None and not posted_in.startswith("D") and self.join_thread is not None:
            await self.join_thread(posted_in, str(response["ts"]))
        if reply.card is not None:
            await self.places.remember(reply.card.card_id, {"channel": posted_in, "ts": str(response["ts"])})

    async def _update(self, reply: Reply, channel: str) -> bool:
        assert reply.card is not None and reply.updates_card is not None
        place = await self.places.find(reply.updates_card)
        if place is None and reply.reply_to.get("card_ts"):
            # the click itself says where the card is (e.g. its place expired from Redis)
            place = {"channel": channel, "ts": reply.reply_to["card_ts"]}
        if place is None:
            log.info("card %s has no known Slack message; posting the update as a new one", reply.updates_card)
            return False
        blocks = card_blocks(reply.card, reply.text, reply.reply_to.get("decided_by", ""), reply.reply_to.get("decided_at", ""))
        try:
            await self._call(place["channel"], "chat_update", channel=place["channel"], ts=place["ts"], text=reply.text or reply.card.title, blocks=blocks)
        except PermanentDeliveryError as err:
            if not isinstance(err.__cause__, SlackApiError) or _error_code(err.__cause__) not in GONE_ERRORS:
                raise
            log.info("card %s message is gone (%s); posting the update as a new one", reply.updates_card, _error_code(err.__cause__))
            return False
        return True

    async def _call(self, lane: str, method: str, **kwargs: Any) -> Any:
        # `lane` is the channel the pacer counts this call against
        for attempt in range(self.rate_limit_retries + 1):
            await self.pacer.wait(lane)
            try:
                return await getattr(self.client, method)(**{k: v for k, v in kwargs.items() if v is not None})
            except SlackApiError as err:
                status = getattr(err.response, "status_code", 0)
                code = _error_code(err)
                if (status == 429 or code == "ratelimited") and attempt < self.rate_limit_retries:
                    delay = _retry_after(err)
                    log.info("slack %s rate limited in %s; retrying after %.1f s", method, lane, delay)
                    self.pacer.defer(lane, delay)
                    continue
                if code in PERMANENT_ERRORS or code in GONE_ERRORS:
                    raise PermanentDeliveryError(f"Slack {method} failed: {code} ({PERMANENT_ERRORS.get(code, 'message gone')})") from err
                raise
        raise AssertionError("unreachable")  # the loop returns or raises
