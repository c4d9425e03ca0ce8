"""Delivering replies to Telegram: messages in the right chat (and topic), cards with inline keyboards,
and in-place edits of a card once it is decided. Flood limits are PTB's AIORateLimiter's job."""
from __future__ import annotations

import base64

import logging

from telegram import Bot, Message, ReplyParameters
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, TelegramError

from bot.channels import PermanentDeliveryError
from bot.channels.card_places import CardPlaces
from bot.channels.telegram_cards import MESSAGE_MAX, ButtonTokens, card_html, keyboard
from kernel.markup import plain, to_html
from kernel.messages import Inbound, Reply

log = logging.getLogger("deputy.telegram")

# what editMessageText answers when the card message cannot be edited: post the update anew
GONE = ("message to edit not found", "message can't be edited", "message_id_invalid")


def _permanent(err: TelegramError, what: str) -> PermanentDeliveryError:
    hint = {
        Forbidden: "the person blocked the bot, or it was removed from the chat",
        InvalidToken: "TELEGRAM_BOT_TOKEN was rejected; copy it again from @BotFather",
    }.get(type(err), "Telegram rejected the request")
    return PermanentDeliveryError(f"Telegram {what} failed: {err.message} ({hint})")


def _rendered(text: str) -> tuple[str, str | None]:
    """Deputy's *bold* markup as Telegram HTML; past one message's length, the plain text clipped instead."""
    rendered = to_html(text)
    if len(rendered) <= MESSAGE_MAX:
        return rendered or "…", ParseMode.HTML
    return plain(text)[:MESSAGE_MAX], None


class TelegramSender:
    """The Telegram channel's Sender."""

    def __init__(self, bot: Bot, places: CardPlaces, tokens: ButtonTokens) -> None:
        self.bot = bot
        self.places = places
        self.tokens = tokens

    async def send(self, reply: Reply) -> None:
        chat_id = reply.reply_to.get("chat_id", "")
        if not chat_id:
            raise PermanentDeliveryError(f"reply {reply.reply_id} has no Telegram chat to go to")
        try:
            if reply.updates_card and reply.card is not None and await self._edit(reply, chat_id):
                return
            await self._post(reply, chat_id)
        except (Forbidden, InvalidToken, BadRequest) as err:
            raise _permanent(err, "delivery") from err

    async def working(self, inbound: Inbound, trace_id: str) -> None:
        """'typing…' in the chat (Telegram shows it for about 5 s, or until Deputy's next message)."""
        to = inbound.reply_to
        thread = int(to["thread"]) if to.get("thread", "").isdigit() else None
        if to.get("chat_id"):
            await self.bot.send_chat_action(to["chat_id"], ChatAction.TYPING, message_thread_id=thread)

    async def _post(self, reply: Reply, chat_id: str) -> None:
        to = reply.reply_to
        answered = to.get("message_id")
        params = ReplyParameters(message_id=int(answered), allow_sending_without_reply=True) if answered and answered.isdigit() else None
        thread = int(to["thread"]) if to.get("thread", "").isdigit() else None
        if reply.card is None:
            text, mode = _rendered(reply.text)
            await self.bot.send_message(chat_id, text, parse_mode=mode, reply_parameters=params, message_thread_id=thread)
            if reply.image_png:
                await self.bot.send_photo(chat_id, base64.b64decode(reply.image_png), message_thread_id=thread)
            return
        markup, issued = await keyboard(reply.card, self.tokens)
        message: Message = await self.bot.send_message(
            chat_id, card_html(reply.card, reply.text, to.get("decided_by", ""), to.get("decided_at", "")),
            parse_mode=ParseMode.HTML, reply_markup=markup, reply_parameters=params, message_thread_id=thread,
        )
        await self.places.remember(reply.card.card_id, {"chat_id": str(message.chat_id), "message_id": str(message.message_id), "tokens": ",".join(issued)})

    async def _edit(self, reply: Reply, chat_id: str) -> bool:
        assert reply.card is not None and reply.updates_card is not None
        place = await self.places.find(reply.updates_card)
        if place is None and reply.reply_to.get("card_message_id", "").isdigit():
            place = {"chat_id": chat_id, "message_id": reply.reply_to["card_message_id"], "tokens": ""}
        if place is None:
            return False
        to = reply.reply_to
        markup, issued = await keyboard(reply.card, self.tokens)
        try:
            await self.bot.edit_message_text(
                card_html(reply.card, reply.text, to.get("decided_by", ""), to.get("decided_at", "")),
                chat_id=place["chat_id"], message_id=int(place["message_id"]), parse_mode=ParseMode.HTML, reply_markup=markup,
            )
        except BadRequest as err:
            text = err.message.lower()
            if "not modified" in text:
                pass  # a redelivered update: the card already shows this
            elif any(g in text for g in GONE):
                await self.tokens.revoke(issued)
                log.info("card %s cannot be edited (%s); posting the update as a new message", reply.updates_card, err.message)
                return False
            else:
                raise
        # the old buttons stop working the moment they disappear
        await self.tokens.revoke([t for t in place.get("tokens", "").split(",") if t])
        await self.places.remember(reply.updates_card, {**place, "tokens": ",".join(issued)})
        return True
