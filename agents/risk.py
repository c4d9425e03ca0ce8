"""Risk: a 0-100 score with its reasons, and the decision (auto / approve / deny) policy makes of it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from agents.policy import Autonomy, Policy, stricter
from integrations.capability import Capability, RiskClass

BASE: dict[RiskClass, int] = {
    RiskClass.READ: 0,
    RiskClass.INTERNAL_WRITE: 10,
    RiskClass.EXTERNAL_WRITE: 35,
    RiskClass.FINANCIAL: 50,
    RiskClass.IRREVERSIBLE: 60,
}


class Directory(Protocol):
    """Who Deputy has dealt with before: a known recipient is less risky than a new one."""

    def known(self, address: str) -> bool: ...


@dataclass(frozen=True)
class Assessment:
    score: int
    reasons: tuple[str, ...]
    decision: Autonomy
    # why that decision, in words the operator reads on the card
    why: str


def recipients_of(capability: Capability, args: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for name in capability.recipient_fields:
        value = args.get(name)
        if isinstance(value, str) and value:
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(str(v) for v in value if v)
    return found


def amount_of(capability: Capability, args: dict[str, Any]) -> float | None:
    if not capability.amount_field:
        return None
    try:
        return float(args.get(capability.amount_field))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Reach:
    """Whom and how much one step reaches: what both the score and the policy's limits look at."""

    recipients: list[str]
    # the recipients Deputy has not dealt with before
    new: list[str]
    amount: float | None
    # whether its effect can be undone (for some capabilities, it depends on where it goes: a webhook's target)
    undoable: bool = True


def assess(
    capability: Capability | None,
    name: str,
    args: dict[str, Any],
    policy: Policy,
    directory: Directory | None = None,
    confidence: float = 1.0,
    untrusted_input: bool = False,
    undo: bool = False,
) -> Assessment:
    """Score one step and decide; unknown capabilities are denied whatever the score. `undo`: the step compensates
    the operator's own action at their request (or a failed plan's rollback), decided by the policy's undo rule."""
    if capability is None:
        return Assessment(100, (f"'{name}' is not a capability I have",), "deny", f"I have no capability called '{name}'.")
    recipients = recipients_of(capability, args)
    new = [r for r in recipients if directory is not None and not directory.known(r)]
    reach = Reach(recipients, new, amount_of(capability, args), capability.undoable(args) or not capability.side_effect)
    score, reasons = _score(capability, reach, confidence, untrusted_input)
    if undo:
        return _decide_undo(capability, reach, score, reasons, policy)
    return _decide(capability, reach, score, reasons, policy, untrusted_input)


def _score(capability: Capability, reach: Reach, confidence: float, untrusted_input: bool) -> tuple[int, tuple[str, ...]]:
    """0-100, and each addition to it in words."""
    reasons: list[str] = []
    score = BASE[capability.risk]
    reasons.append(f"{capability.risk.value} (+{score})")
    if capability.side_effect and not reach.undoable:
        score += 15
        reasons.append("cannot be undone (+15)")
    if reach.new:
        score += 15
        reasons.append(f"new recipient{'s' if len(reach.new) > 1 else ''} {', '.join(reach.new[:3])} (+15)")
    if len(reach.recipients) > 5:
        score += 10
        reasons.append(f"{len(reach.recipients)} recipients (+10)")
    if reach.amount:
        bump = min(30, int(reach.amount / 10))
        score += bump
        reasons.append(f"amount {reach.amount:g} (+{bump})")
    if confidence < 0.8 and capability.side_effect:
        bump = int(round((1 - confidence) * 30))
        score += bump
        reasons.append(f"I was {confidence:.0%} sure what you meant (+{bump})")
    if untrusted_input and capability.side_effect:
        score += 20
        reasons.append("built from content you did not write (+20)")
    return max(0, min(100, score)), tuple(reasons)


def _decide(capability: Capability, reach: Reach, score: int, reasons: tuple[str, ...], policy: Policy,
            untrusted_input: bool) -> Assessment:
    """The policy's decision for this capability, its limits, then its rules and thresholds, each only ever stricter."""
    decision: Autonomy = policy.autonomy(capability.name)
    why = f"policy: {capability.name} is '{decision}'"
    if decision == "deny":
        return Assessment(score, reasons, "deny", f"the policy does not allow {capability.name}")
    over = _over_limits(capability, reach, policy)
    if over:
        return Assessment(score, reasons, "deny", over)
    if not capability.side_effect:
        return Assessment(score, reasons, decision, "read-only" if decision == "auto" else why)
    for r in policy.rules:
        hit = (
            r.when == "always"
            or (r.when == "irreversible" and not reach.undoable)
            or (r.when == "external_recipient" and any(not policy.is_internal(x) for x in reach.recipients))
            or (r.when == "new_recipient" and bool(reach.new))
            or (r.when == "amount_over" and reach.amount is not None and r.amount is not None and reach.amount > r.amount)
            or (r.when == "untrusted_input" and untrusted_input)
        )
        if hit and stricter(r.then, decision) != decision:
            decision = r.then
            why = f"rule: {r.when.replace('_', ' ')}" + (f" {r.amount:g}" if r.amount is not None else "")
    if score >= policy.thresholds.deny:
        return Assessment(score, reasons, "deny", f"risk {score} is at or over the refusal threshold {policy.thresholds.deny}")
    if score >= policy.thresholds.approve and decision == "auto":
        decision, why = "approve", f"risk {score} is at or over the approval threshold {policy.thresholds.approve}"
    return Assessment(score, reasons, decision, why)


def _over_limits(capability: Capability, reach: Reach, policy: Policy) -> str:
    """Which of the capability's own limits in the policy the step is over, in words; "" when none."""
    rule = policy.rule_for(capability.name)
    if rule and rule.max_recipients is not None and len(reach.recipients) > rule.max_recipients:
        return f"{len(reach.recipients)} recipients is over the policy's limit of {rule.max_recipients}"
    if rule and rule.max_amount is not None and reach.amount is not None and reach.amount > rule.max_amount:
        return f"{reach.amount:g} is over the policy's limit of {rule.max_amount:g}"
    return ""


def _decide_undo(capability: Capability, reach: Reach, score: int, reasons: tuple[str, ...], policy: Policy) -> Assessment:
    """An undo is the operator's explicit decision on the exact action its done card names, so the policy's undo rule
    decides it rather than the rules and threshold that ask before acting; a denied capability, its limits and the
    refusal threshold still hold."""
    if policy.autonomy(capability.name) == "deny":
        return Assessment(score, reasons, "deny", f"the policy does not allow {capability.name}")
    over = _over_limits(capability, reach, policy)
    if over:
        return Assessment(score, reasons, "deny", over)
    if score >= policy.thresholds.deny:
        return Assessment(score, reasons, "deny", f"risk {score} is at or over the refusal threshold {policy.thresholds.deny}")
    decision = policy.undo.autonomy
    if decision == "deny":
        return Assessment(score, reasons, "deny", "the policy does not allow undoing")
    why = "you asked to undo your own action" if decision == "auto" else f"policy: undo is '{decision}'"
    return Assessment(score, reasons, decision, why)
