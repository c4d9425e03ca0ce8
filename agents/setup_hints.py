"""When a request needs a connector that is not set up: what Deputy would have done, exactly which settings
enable it and where the README explains them, and an offer to keep the request as a draft or a task meanwhile.

What enables what is the table in agents/setups.py. The offer is kept in the event log under the request's trace
("setup.missing"), so the Keep buttons need no other state."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from agents.drafts import Request, draft_card, new_draft
from agents.setups import MODEL, Setup, setup_for
from agents.skill_context import SkillContext
from kernel.keys import Keys
from kernel.messages import Button, Card, CardField, Outcome

if TYPE_CHECKING:
    from agents.agent import Agent
    from agents.llm import Llm

KEEP_DRAFT = "setup.draft"
KEEP_TASK = "setup.task"
CLAIM_TTL_S = 90 * 86_400


def configured_names(agent: "Agent | None", llm: "Llm | None") -> frozenset[str]:
    """The capabilities a process has, plus MODEL when a language model is configured."""
    names: set[str] = set()
    if agent is not None:
        names |= set(agent.planner.capabilities) | set(agent.executor.capabilities)
    if llm is not None or (agent is not None and agent.planner.llm is not None):
        names.add(MODEL)
    return frozenset(names)


def configured(ctx: SkillContext) -> frozenset[str]:
    return configured_names(ctx.agent, ctx.llm)


def unconfigured(ctx: SkillContext, capability: str, would: str, args: Mapping[str, Any] | None = None) -> Outcome | None:
    """None when `capability` is configured; otherwise the setup hint, with Keep buttons.

    `would` is what Deputy would have done, as an imperative phrase ("send “Contract” to ana@acme.io"); `args`
    are the capability's arguments, so an email (to, subject, body) can be kept as a draft."""
    setup = setup_for(capability)
    if capability in configured(ctx) or setup is None:
        return None
    email = _email(args or {}) if capability == "email.send" else None
    ctx.events.record(ctx.trace_id, "setup.missing", actor="worker", capability=capability, family=setup.family,
                      would=would[:300], settings=list(setup.required), email=email)
    text = (f"I would {would}, but {setup.family} is not set up here yet. To enable it, set {setup.settings}, then restart "
            f"Deputy ({setup.readme}). Meanwhile I can keep this {'as a draft or ' if email else ''}as a task.")
    return Outcome(text=text, card=_card(ctx.trace_id, setup, would, email is not None), ok=False)


def _email(args: Mapping[str, Any]) -> dict[str, Any] | None:
    to = args.get("to")
    # an address a later step would have found ("${steps.0…}") is no address yet: nothing to keep as a draft
    to = [a for a in ([to] if isinstance(to, str) else [str(a) for a in (to or [])]) if "@" in a and "${" not in a]
    if not to:
        return None
    return {"to": to, "subject": str(args.get("subject") or ""), "body": str(args.get("body") or "")}


def _card(trace_id: str, setup: Setup, would: str, draft: bool, resolution: str = "") -> Card:
    buttons: tuple[Button, ...] = ()
    if not resolution:
        keep_draft = (Button(label="Keep as draft", action=KEEP_DRAFT, value=trace_id, style="primary"),) if draft else ()
        buttons = keep_draft + (Button(label="Keep as a task", action=KEEP_TASK, value=trace_id),)
    return Card(
        card_id=f"setup-{trace_id}",
        title=f"Not set up: {setup.family}",
        fields=(CardField(label="I would", value=would[:300]), CardField(label="To enable it, set", value=setup.settings),
                CardField(label="Read", value=f"{setup.readme} (README.md#{setup.anchor})")),
        buttons=buttons,
        resolution=resolution,
    )


def _offer(ctx: SkillContext, trace_id: str) -> dict[str, Any] | None:
    offers = [e for e in ctx.events.timeline(trace_id) if e.kind == "setup.missing"] if trace_id.isalnum() else []
    return dict(offers[-1].data) if offers else None


def _claim(ctx: SkillContext, trace_id: str, kept_as: str) -> str | None:
    """None when this click is the first; otherwise what the request was already kept as."""
    key = Keys(ctx.workspace)("setup.kept", trace_id)
    if ctx.events.redis.set(key, kept_as, nx=True, ex=CLAIM_TTL_S):
        return None
    earlier = ctx.events.redis.get(key)
    return earlier.decode() if isinstance(earlier, bytes) else str(earlier)


def keep_as_draft(ctx: SkillContext, value: str) -> Outcome:
    """The Keep as draft button: the email that could not be sent becomes a draft card (Send / Discard)."""
    offer = _offer(ctx, value)
    setup = setup_for(str(offer.get("capability", ""))) if offer else None
    if offer is None or setup is None or not offer.get("email") or ctx.drafts is None:
        return Outcome(text="That button is not valid any more.", ok=False)
    earlier = _claim(ctx, value, "a draft")
    if earlier is not None:
        return Outcome(text=f"Already kept as {earlier}.", card=_card(value, setup, offer["would"], True, f"Kept as {earlier}"))
    email = offer["email"]
    request = Request(to=tuple(email["to"]), people=(), about=email["subject"], text=str(offer["would"]))
    made = new_draft(request, email["subject"], email["body"], "operator", ctx.trace_id)
    ctx.drafts.save(made)
    ctx.events.record(ctx.trace_id, "draft.created", actor=ctx.actor, draft_id=made.id, to=list(made.to),
                      written_by=made.written_by, digest=made.digest, setup_trace=value)
    return Outcome(text=f"Kept as a draft. Once {setup.family} is set up, press Send.", card=draft_card(made),
                   updates=(_card(value, setup, offer["would"], True, "Kept as a draft"),))


def keep_as_task(ctx: SkillContext, value: str) -> Outcome:
    """The Keep as a task button: a task titled with what Deputy would have done."""
    offer = _offer(ctx, value)
    setup = setup_for(str(offer.get("capability", ""))) if offer else None
    if offer is None or setup is None:
        return Outcome(text="That button is not valid any more.", ok=False)
    earlier = _claim(ctx, value, "a task")
    draft = bool(offer.get("email"))
    if earlier is not None:
        return Outcome(text=f"Already kept as {earlier}.", card=_card(value, setup, offer["would"], draft, f"Kept as {earlier}"))
    would = str(offer["would"])
    task = ctx.tasks.add(would[:1].upper() + would[1:], source_event=ctx.trace_id)
    return Outcome(text=f"Kept as task #{task.id}: {task.title}",
                   card=_card(value, setup, would, draft, f"Kept as task #{task.id}"))
