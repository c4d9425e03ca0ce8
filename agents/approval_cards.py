"""Approval cards: what the operator sees before Deputy acts — the exact action, its risk and why."""
from __future__ import annotations

import time

from agents.approvals import Approval, ApprovalState
from integrations.capability import plain_preview
from kernel.messages import Button, Card, CardField


def _clock(ts: float) -> str:
    return time.strftime("%H:%M UTC", time.gmtime(ts))


def target_of(approval: Approval) -> str:
    args = approval.args
    for name in ("to", "attendees", "url", "webhook", "name", "email"):
        value = args.get(name)
        if value:
            return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    return "—"


def asks_approval(card: Card) -> bool:
    """Whether the card waits for an approval (its Approve button), rather than showing a done action."""
    return any(b.action == "approval.approve" for b in card.buttons)


def approval_card(approval: Approval, state: ApprovalState | None = None) -> Card:
    """The card with Approve / Reject while pending; once decided, the resolution and no buttons."""
    amount = next((str(approval.args[k]) for k in ("amount", "total") if k in approval.args), "—")
    fields = [
        CardField(label="Action", value=approval.capability),
        *((CardField(label="Specialist", value=approval.specialist),) if approval.specialist else ()),
        CardField(label="Target", value=target_of(approval)),
        CardField(label="Amount", value=amount),
        CardField(label="Risk score", value=f"{approval.risk_score}/100 — " + "; ".join(approval.risk_reasons)),
        CardField(label="Why I ask", value=approval.why or "policy"),
    ]
    if approval.reversibility:
        fields.append(CardField(label="Undo", value=approval.reversibility))
    if approval.flags:
        fields.append(CardField(label="Flags", value="; ".join(approval.flags)))
    fields.append(CardField(label="Expires", value=_clock(approval.expires_at)))
    resolution = ""
    buttons: tuple[Button, ...] = (
        Button(label="Approve", action="approval.approve", value=approval.id, style="primary"),
        Button(label="Reject", action="approval.reject", value=approval.id, style="danger"),
    )
    if state is not None and state.status != "pending":
        buttons = ()
        if state.status == "expired":
            resolution = "Expired — nothing was done"
        elif state.status == "superseded":
            resolution = "Superseded by the corrected version below — this one can no longer be approved"
        else:
            verb = "Approved" if state.status == "approved" else "Rejected"
            resolution = f"{verb} by {state.decided_by} at {_clock(state.decided_at or time.time())}"
    return Card(
        card_id=approval.card_id,
        # the capability's own title and preview, kept with the approval when it was asked for
        title=approval.title or f"Run {approval.capability}?",
        fields=tuple(fields),
        rationale=approval.rationale,
        preview=approval.preview or plain_preview(approval.args),
        buttons=buttons,
        resolution=resolution,
    )
