"""Skills for action intents: each starts a run (plan → inspect → execute); drafts, operator capability intents,
and the approval and draft buttons."""
from __future__ import annotations

from dataclasses import replace

from pydantic import ValidationError

from agents.drafts import Draft, draft_card, new_draft, parse_request, template, written_by_model
from kernel.messages import Intent, Outcome
from agents.plan import Origin
from agents.planner import Planner
from agents.playbooks import Playbook, StepTemplate, fill
from agents.recollections import Recollection, Recollector
from agents.setup_hints import unconfigured
from agents.setups import MODEL, needed_by
from agents.skill_context import SkillContext
from memory.retrieval import render_for_model

NOT_WIRED = Outcome(text="I cannot act from here: this process has no agent configured.", ok=False)


def act(ctx: SkillContext, intent: Intent) -> Outcome:
    if ctx.agent is None:
        return NOT_WIRED
    not_set_up = _not_set_up(ctx, intent)
    if not_set_up is not None:
        return not_set_up
    # what someone else wrote (an email, a form) travels separately, as data, never as the goal itself; a reply
    # in the thread of a delivery ("answer her") acts on that delivery
    content = intent.slots.get("content") or _delivery_in_thread(ctx)
    untrusted = (str(content),) if content else ()
    origin = Origin(channel=ctx.channel or "console", thread_id=ctx.thread_id, actor=ctx.actor, reply_to=dict(ctx.reply_to))
    return ctx.agent.start(intent, origin, ctx.trace_id, untrusted, _recalled(ctx, intent))


def _not_set_up(ctx: SkillContext, intent: Intent) -> Outcome | None:
    """The setup hint, before any planning, when the intent's playbook needs a connector (or, for a plan the model
    makes, the model, or what its goal plainly needs) that this configuration lacks."""
    book = ctx.agent.planner.playbook_for(intent) if ctx.agent is not None else None
    if book is None:
        return None
    slots = {k: ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else v for k, v in intent.slots.items()}
    would = fill(book.would, slots) if book.would and not book.missing(intent.slots) else book.description
    for step in book.steps:
        hint = unconfigured(ctx, step.capability, would, fill(step.args, intent.slots))
        if hint is not None:
            return hint
    if book.steps:
        return None
    # a goal that plainly needs what is not set up ("email Ana …" without SMTP) could never be planned: say so first
    goal = str(intent.slots.get("goal") or intent.slots.get("instruction") or intent.text)
    needed = [c for setup in needed_by(goal) for c in book.allowed if setup.covers(c)]
    # then the goal itself is what Deputy would have done, and the task it can keep
    hints = (unconfigured(ctx, c, would if c == MODEL else goal) for c in (MODEL, *needed))
    return next((h for h in hints if h is not None), None)


def _delivery_in_thread(ctx: SkillContext) -> str:
    """The latest delivery from outside (a webhook) in the thread the operator is answering in, or ""."""
    for event in ctx.events.recent(200, kinds=["inbound.received"]):
        if event.data.get("thread_id") != ctx.thread_id or event.trace_id == ctx.trace_id or not event.actor.startswith("hook:"):
            continue
        for step in ctx.events.timeline(event.trace_id):
            if step.kind == "intent.recognized" and (step.data.get("slots") or {}).get("content"):
                return str(step.data["slots"]["content"])
        return str(event.data.get("text") or "")
    return ""


def _recalled(ctx: SkillContext, intent: Intent) -> tuple[Recollection, ...]:
    """What Deputy knows about this goal, for a plan the model makes (a playbook's fixed steps use none): facts
    about whom and what it names, notes and memories, each marked with whose words they are. The model sees someone
    else's as data, and the inspector counts the addresses and numbers in them as someone else's."""
    book = ctx.agent.planner.playbook_for(intent) if ctx.agent is not None else None
    if book is None or book.steps:
        return ()
    goal = str(intent.slots.get("goal") or intent.slots.get("instruction") or intent.text)
    # the other slots may name people and deals too ("people", "lead", "attendees")
    named = " ".join(", ".join(map(str, v)) if isinstance(v, list) else str(v)
                     for k, v in intent.slots.items() if k not in ("goal", "instruction", "content") and isinstance(v, (str, list)))
    retriever = ctx.recall.retriever if ctx.recall is not None else None
    return Recollector(ctx.facts, ctx.notes, retriever, ctx.workspace).recollect(f"{goal}\n{named}".strip())


def approve(ctx: SkillContext, value: str) -> Outcome:
    if ctx.agent is None:
        return NOT_WIRED
    return ctx.agent.decide(value, ctx.actor, "approved", ctx.trace_id)


def reject(ctx: SkillContext, value: str) -> Outcome:
    if ctx.agent is None:
        return NOT_WIRED
    return ctx.agent.decide(value, ctx.actor, "rejected", ctx.trace_id)


def draft(ctx: SkillContext, intent: Intent) -> Outcome:
    """A draft email shown as a card; nothing leaves until Send goes through the email playbook's approval."""
    if ctx.drafts is None:
        return Outcome(text="I cannot keep drafts here: this process has no draft store configured.", ok=False)
    request = parse_request(intent.slots)
    if not request.about and not request.to:
        return Outcome(text="What should the email say? For example: /draft ana@acme.io about the invoice for May", ok=False)
    written = None
    if ctx.llm is not None:
        memories = ""
        if ctx.recall is not None:
            hits = ctx.recall.retriever.retrieve(ctx.workspace, request.about or request.text, intent="draft")
            memories = render_for_model(hits)
        # the console sees the draft being written; the reply, with its card, replaces it
        written = written_by_model(ctx.llm, request, memories, show=ctx.partial)
    by_model = written is not None and not written.why
    subject, body = (written.subject, written.body) if written is not None and by_model else template(request)
    made = new_draft(request, subject, body, "model" if by_model else "template", ctx.trace_id)
    ctx.drafts.save(made)
    ctx.events.record(ctx.trace_id, "draft.created", actor="worker", draft_id=made.id, to=list(made.to),
                      written_by=made.written_by, digest=made.digest, **({"why": written.why} if written and written.why else {}))
    note = "" if written is None or by_model else f" from a template: {written.why}"
    hint = " Add an address to send it: /draft ADDRESS ABOUT." if not made.to else " Send asks for your approval first."
    return Outcome(text=f"Here is a draft{note}.{hint}", card=draft_card(made))


def _open_draft(ctx: SkillContext, value: str) -> tuple[Draft, str] | Outcome:
    draft_id, _, digest = value.partition(".")
    found = ctx.drafts.get(draft_id) if ctx.drafts is not None and draft_id else None
    if found is None:
        return Outcome(text="I no longer have that draft (drafts are kept for 7 days); nothing was sent. Ask me for a new one.", ok=False)
    made, status = found
    if made.digest != digest:
        ctx.events.record(ctx.trace_id, "draft.refused", actor="worker", draft_id=made.id, reason="changed since shown")
        return Outcome(text="That draft changed after I showed it to you, so I did not send it. Ask me for a new draft.", ok=False)
    return made, status


def send_draft(ctx: SkillContext, value: str) -> Outcome:
    """Send: the email playbook plans exactly this draft, so policy and approval apply as to any email."""
    if ctx.agent is None or ctx.drafts is None:
        return NOT_WIRED
    opened = _open_draft(ctx, value)
    if isinstance(opened, Outcome):
        return opened
    made, _ = opened
    if not made.to:
        return Outcome(text="This draft has no recipient; ask again with an address: /draft ADDRESS ABOUT.", ok=False)
    # the draft stays open, so Send works once email is set up
    not_set_up = unconfigured(ctx, "email.send", f"send “{made.subject}” to {', '.join(made.to)}")
    if not_set_up is not None:
        return not_set_up
    ours, status = ctx.drafts.close(made.id, "sent", ctx.trace_id)
    if not ours:
        what = "already sent for approval" if status == "sent" else "discarded"
        return Outcome(text=f"That draft was {what}; nothing new was done.", card=draft_card(made, resolution=what.capitalize()), ok=False)
    ctx.events.record(ctx.trace_id, "draft.send", actor=ctx.actor, draft_id=made.id, digest=made.digest, draft_trace=made.trace_id)
    slots = {"to": list(made.to), "subject": made.subject, "body": made.body}
    # a reply goes through the same approval, with the headers that keep it in the sender's thread
    thread = {"in_reply_to": made.in_reply_to, "references": made.references or made.in_reply_to} if made.in_reply_to else {}
    return act(ctx, Intent(name="email_reply" if thread else "email", text=made.request, slots=slots | thread))


def discard_draft(ctx: SkillContext, value: str) -> Outcome:
    if ctx.drafts is None:
        return Outcome(text="I cannot keep drafts here: this process has no draft store configured.", ok=False)
    opened = _open_draft(ctx, value)
    if isinstance(opened, Outcome):
        return opened
    made, _ = opened
    ours, status = ctx.drafts.close(made.id, "discarded", ctx.trace_id)
    if not ours:
        what = "already sent for approval" if status == "sent" else "already discarded"
        return Outcome(text=f"That draft was {what}; nothing was changed.", card=draft_card(made, resolution=what.capitalize()), ok=False)
    ctx.events.record(ctx.trace_id, "draft.discarded", actor=ctx.actor, draft_id=made.id)
    return Outcome(text="Discarded; nothing was sent.", card=draft_card(made, resolution=f"Discarded by {ctx.actor}"))


# slots recognition adds for its own bookkeeping; never arguments of a capability
_BOOKKEEPING = {"intent", "capability", "playbook", "candidates"}


def run_capability(ctx: SkillContext, intent: Intent) -> Outcome:
    """An operator's intent that names a capability: a one-step plan through the agent, so the inspector,
    policy, risk and approvals apply exactly as to any plan. Arguments are the slots, checked against the
    capability's input model first so a missing one becomes a question, not a failed run."""
    if ctx.agent is None:
        return NOT_WIRED
    name = str(intent.slots.get("capability") or "")
    label = str(intent.slots.get("intent") or name)
    capability = ctx.agent.planner.capabilities.get(name)
    args = {k: v for k, v in intent.slots.items() if k not in _BOOKKEEPING and v not in (None, "", [])}
    not_set_up = unconfigured(ctx, name, label.replace("_", " "), args) if capability is None else None
    if not_set_up is not None:
        return not_set_up
    if capability is not None:
        fields = capability.input_model.model_fields
        args = {k: v for k, v in args.items() if k in fields}
        try:
            capability.input_model.model_validate(args)
        except ValidationError as err:
            missing = [str(e["loc"][0]) for e in err.errors() if e["type"] == "missing" and e["loc"]]
            if missing:
                wanted = ", ".join(f"{m} ({fields[m].description})" if fields[m].description else m for m in missing)
                return Outcome(text=f"To do '{label}' I still need: {wanted}. Tell me again with those included.", ok=False)
            bad = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()[:3])
            return Outcome(text=f"I could not do '{label}': {bad}. Nothing was changed.", ok=False)
    book = Playbook(
        name=label, description=f"do '{label}'", allowed=(name,),
        # "{slot}" templates, filled from the slots by the planner: values keep their types and are never re-parsed
        steps=(StepTemplate(capability=name, args={k: "{" + k + "}" for k in args}, rationale=f"You asked me to {label.replace('_', ' ')}.",
                            expect=capability.description if capability is not None else ""),),
    )
    # the same agent with a planner that knows just this one-step plan: everything after planning is shared
    planner = Planner({label: book}, ctx.agent.planner.capabilities, None)
    one_step = replace(ctx.agent, planner=planner)
    origin = Origin(channel=ctx.channel or "console", thread_id=ctx.thread_id, actor=ctx.actor, reply_to=dict(ctx.reply_to))
    return one_step.start(intent.model_copy(update={"name": label}), origin, ctx.trace_id)
