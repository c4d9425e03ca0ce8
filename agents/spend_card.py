"""The "approve more spend" card: what a call over budget would cost, and one click to allow it today."""
from __future__ import annotations

from agents.budget import SpendRequest
from agents.costs import money
from kernel.messages import Button, Card, CardField


def spend_card(request: SpendRequest) -> Card:
    decided = request.status != "pending"
    resolution = ""
    if request.status == "approved":
        resolution = f"Approved by {request.decided_by}: {money(request.extra)} more for today ✓"
    elif request.status == "declined":
        resolution = f"Declined by {request.decided_by}; nothing was spent."
    return Card(
        card_id=f"spend-{request.id}",
        title=f"Approve more spend for '{request.project}'?",
        fields=(
            CardField(label="Why", value=f"this call would pass the {request.scope} cap"),
            CardField(label=f"Spent ({request.scope})", value=f"{money(request.spent)} of {money(request.cap)}"),
            CardField(label="This call (at most)", value=f"{money(request.estimate)} on {request.model}"),
            CardField(label="Raise today by", value=money(request.extra)),
        ),
        rationale="Nothing was sent to the model. Approving raises today's cap only and runs the request again.",
        buttons=() if decided else (
            Button(label=f"Approve {money(request.extra)}", action="budget.approve", value=request.id, style="primary"),
            Button(label="Not now", action="budget.decline", value=request.id),
        ),
        resolution=resolution,
    )
