"""The done card: what Deputy just did, with an Undo button while UNDO_WINDOW lasts."""
from __future__ import annotations

import time

from kernel.messages import Button, Card, CardField
from memory.undo_log import Undoable

# the Undo button's action; its value is the undoable's id
UNDO = "run.undo"


def _clock(ts: float) -> str:
    return time.strftime("%H:%M UTC", time.gmtime(ts))


def minutes(window_s: float) -> str:
    """The undo window in the words a card uses: "15 min", "1 h", "90 s"."""
    if window_s % 3600 == 0 and window_s >= 3600:
        return f"{int(window_s // 3600)} h"
    return f"{int(window_s // 60)} min" if window_s >= 60 else f"{int(window_s)} s"


def undo_card(item: Undoable, window_s: float, now: float, resolution: str = "") -> Card:
    """The card of a done action: Undo while the window is open; once undone or too late, why there is none."""
    until = item.created_at + window_s
    open_ = not resolution and now <= until
    when = f"until {_clock(until)} ({minutes(window_s)} after it was done)"
    fields = (CardField(label="Undo", value=f"Can be undone {when}" if open_ else f"Could be undone {when}"),)
    return Card(
        card_id=f"done-{item.id}",
        title="Done",
        fields=fields,
        preview=item.summary,
        buttons=(Button(label="Undo", action=UNDO, value=item.id),) if open_ else (),
        resolution=resolution or ("" if open_ else "Too late to undo"),
    )
