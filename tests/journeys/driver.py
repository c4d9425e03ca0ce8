"""The user's side of a journey: say something on a channel, wait for Deputy's answer, click a button.

Each channel's user speaks that channel's wire protocol to the real gateway (the console's JSON API,
Slack's signed Events API and interactivity payloads, Telegram's webhook updates) and reads what Deputy
showed back where that channel shows it (the console's thread, the Slack and Telegram API fakes)."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from tests.journeys.cluster import JourneyCluster
from tests.waiting import wait_for

# how long a journey waits for an answer before it fails (a first request also loads the local models)
REPLY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ButtonView:
    label: str
    action: str
    value: str
    # what a click sends back on the platform: Slack's action_id, Telegram's callback_data
    data: str = ""


@dataclass(frozen=True)
class CardView:
    title: str
    fields: Mapping[str, str] = field(default_factory=dict)
    buttons: tuple[ButtonView, ...] = ()
    resolution: str = ""
    rationale: str = ""
    preview: str = ""

    @property
    def labels(self) -> list[str]:
        return [b.label for b in self.buttons]

    def button(self, label: str) -> ButtonView | None:
        return next((b for b in self.buttons if b.label == label), None)


@dataclass(frozen=True)
class Said:
    """One thing Deputy showed in the thread: a new message, or a new version of one shown before (`edit`)."""

    id: str
    text: str
    card: CardView | None = None
    edit: bool = False
    raw: Any = None

    @property
    def shown(self) -> str:
        """Everything the user can read in it, as one text (for `in` checks)."""
        if self.card is None:
            return self.text
        card = self.card
        parts = [self.text, card.title, *(f"{k}: {v}" for k, v in card.fields.items()), card.rationale, card.preview, card.resolution]
        return "\n".join(p for p in parts if p)

    def __str__(self) -> str:
        kind = "edit" if self.edit else "new"
        buttons = f" [{' | '.join(self.card.labels)}]" if self.card and self.card.buttons else ""
        return f"{kind} {self.id}: {self.shown!r}{buttons}"


class User:
    """What every channel's user can do. A subclass says how to send, how to click, and what Deputy showed."""

    def __init__(self, cluster: JourneyCluster) -> None:
        self.cluster = cluster
        self._cursor = 0

    # --- the channel's part

    def events(self) -> list[Said]:
        """Everything Deputy showed in this thread, in order; the list only grows."""
        raise NotImplementedError

    def _send(self, text: str) -> None:
        raise NotImplementedError

    def _press(self, said: Said, button: ButtonView) -> str:
        raise NotImplementedError

    # --- the journey's part

    def say(self, text: str) -> int:
        """Send `text` in this thread; returns the mark from which its answers count (see `reply(after=)`)."""
        self._cursor = len(self.events())
        self._send(text)
        return self._cursor

    def reply(self, timeout: float = REPLY_TIMEOUT_S, after: int | None = None, containing: str | None = None,
              where: Callable[[Said], bool] | None = None) -> Said:
        """The next thing Deputy shows here (after the last `say`/`click`/`reply`, or `after` a mark);
        with `containing`/`where`, the next one that matches, skipping others."""
        start = self._cursor if after is None else after

        def matches(said: Said) -> bool:
            return (containing is None or containing in said.shown) and (where is None or where(said))

        def found() -> tuple[int, Said] | None:
            events = self.events()
            return next(((i, s) for i, s in enumerate(events[start:], start) if matches(s)), None)

        what = f"Deputy's reply{f' containing {containing!r}' if containing else ''}"
        try:
            index, said = wait_for(found, timeout, interval=0.1, what=what)
        except AssertionError as err:
            raise AssertionError(f"{err}\n{self.transcript()}") from None
        self._cursor = index + 1
        return said

    def ask(self, text: str, **wait: Any) -> Said:
        """say(text), then its reply."""
        self.say(text)
        return self.reply(**wait)

    def click(self, label: str, on: Said | None = None) -> str:
        """Click the button `label` on `on`, or on the latest card that shows it; returns the platform's
        immediate answer (the console's ack status, Telegram's callback answer, Slack's HTTP status)."""
        said = on or next((s for s in reversed(self.messages()) if s.card and s.card.button(label)), None)
        button = said.card.button(label) if said and said.card else None
        if said is None or button is None:
            raise AssertionError(f"no card here has a button {label!r}\n{self.transcript()}")
        self._cursor = len(self.events())
        return self._press(said, button)

    def messages(self) -> list[Said]:
        """Deputy's messages as they stand now (each at its latest version), in the order first shown."""
        latest: dict[str, Said] = {}
        for said in self.events():
            latest[said.id] = said
        return list(latest.values())

    def transcript(self, last: int = 10) -> str:
        events = self.events()
        lines = [str(s) for s in events[-last:]] or ["(Deputy has shown nothing in this thread)"]
        return ("what Deputy showed here:\n  " + "\n  ".join(lines) + f"\n--- worker.log\n{self.cluster.log('worker', 15)}"
                + f"\n--- gateway.log\n{self.cluster.log('gateway', 15)}")


def request_json(url: str, body: bytes | None = None, headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, headers=dict(headers or {}), method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def expect_status(status: int, body: Any, ok: tuple[int, ...], what: str) -> None:
    if status not in ok:
        raise AssertionError(f"{what} answered {status}: {body!r}")
