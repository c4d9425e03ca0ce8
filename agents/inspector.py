"""The inspector: checks a plan before any side effect and each result after it.

It enforces what the planner cannot be trusted to: tools allowed for the intent, required fields,
recipients within policy, untrusted text never acting as instructions, PII leaving in outbound text."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from pydantic import ValidationError

from agents import provenance
from agents.injection import INJECTION
from agents.plan import Plan, Step
from agents.revealed import Revealed, reveal
from agents.policy import Policy
from agents.risk import recipients_of
from agents.setups import enabling
from agents.specialists import named, refusal
from integrations.capability import Capability
from kernel.text import EMAIL

Severity = Literal["flag", "block"]

PII = {
    "a card number": re.compile(r"\b(?:\d[ -]?){13,19}\b"),
    "an IBAN": re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){3,7}\b"),
    "a social security number": re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
    "a password": re.compile(r"\b(?:password|passwd|pwd)\s*[:=]\s*\S+", re.IGNORECASE),
}
OUTBOUND_TEXT = ("body", "text", "description", "message", "payload", "notes")
# how the operator still gets a refused target: by choosing it themselves
SAY_IT = "I do not let what others write choose whom I reach, where, or how much; name it yourself and I will ask you to approve"


@dataclass(frozen=True)
class Finding:
    step: int | None
    severity: Severity
    reason: str


@dataclass(frozen=True)
class Verdict:
    findings: tuple[Finding, ...] = ()

    @property
    def blocked(self) -> bool:
        return any(f.severity == "block" for f in self.findings)

    def for_step(self, index: int) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.step in (index, None))

    def reasons(self, severity: Severity | None = None) -> list[str]:
        return [f.reason for f in self.findings if severity is None or f.severity == severity]


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total % 10 == 0


def pii_in(text: str) -> list[str]:
    found = []
    for name, pattern in PII.items():
        for match in pattern.finditer(text):
            if name == "a card number" and not _luhn(re.sub(r"\D", "", match.group())):
                continue
            found.append(name)
            break
    return found


def injection_in(texts: tuple[str, ...]) -> str | None:
    for text in texts:
        # matched on what the model reads, not on what a person sees: hidden and disguised words included
        match = INJECTION.search(reveal(text).inspect)
        if match:
            return match.group(0)
    return None


class Inspector:
    def __init__(self, policy: Policy, provenance: bool = True, known: provenance.Acquaintance | None = None) -> None:
        self.policy = policy
        # off only in the injection proof's self-test, which must see a weakened build let attacks through
        self.provenance = provenance
        # the operator's contacts and facts: what they already know is theirs to reach, wherever it is also written
        self.known = known

    def _theirs(self, value: str) -> bool:
        return self.known is not None and self.known.known(value)

    def check_plan(self, plan: Plan, capabilities: Mapping[str, Capability], operator_text: str) -> Verdict:
        """Before anything runs: tools allowed, inputs complete, nothing steered by untrusted text."""
        findings: list[Finding] = []
        injected = injection_in(plan.untrusted)
        if injected:
            findings.append(Finding(None, "flag", f"the content I was given contains instructions to me ('{injected}'); I treat it as data"))
        # addresses the operator typed, or Deputy already knows, are the operator's; the rest came from elsewhere.
        # The content's own sender or organiser is whom "reply to her" or "accept this invite" points at.
        operator_addresses = {a.lower() for a in EMAIL.findall(operator_text)} | set(plan.senders)
        seen = tuple(reveal(t) for t in plan.untrusted)
        findings += _hidden_text(plan, capabilities, seen)
        # as written and as read: a lookalike address is theirs, and so is one spelled out only in hidden text
        untrusted_addresses = {a.lower() for t, s in zip(plan.untrusted, seen) for a in EMAIL.findall(f"{t}\n{s.inspect}")}
        for step in plan.steps:
            findings += self._check_step(plan, step, capabilities, operator_addresses, untrusted_addresses)
        if plan.untrusted and self.provenance:
            findings += self._check_provenance(plan, capabilities, operator_text)
        return Verdict(tuple(findings))

    def _check_provenance(self, plan: Plan, capabilities: Mapping[str, Capability], operator_text: str) -> list[Finding]:
        """Steps reaching outside in a plan made while reading someone else's text: flagged unless the operator's
        own words asked for that kind of action and every link, account number and amount they carry."""
        # a model-made plan's goal is the operator's instruction; a playbook's is its own template
        words = f"{operator_text}\n{plan.goal}" if plan.source == "llm" else operator_text
        theirs: dict[str, str] = {}
        for text in plan.untrusted:
            theirs.update(provenance.values(f"{text}\n{reveal(text).inspect}"))
        ours = provenance.values(words)
        # a reply quoting the thread's subject carries its reference numbers back: the thread's, not a choice
        thread = provenance.thread_values(plan.untrusted)
        out: list[Finding] = []
        for step in plan.steps:
            capability = capabilities.get(step.capability)
            if capability is None or not capability.side_effect or not provenance.reaches_outside(capability):
                continue
            n = step.index + 1
            if plan.source == "llm" and not provenance.asked_for(step.capability, words):
                out.append(Finding(step.index, "flag", f"step {n} ({step.capability}) is not something you asked for; "
                                                       "it was proposed while reading content you did not write"))
            targets = provenance.targets(capability, step.args)
            # where it goes and how much it moves are never chosen by someone else's text: refused, not asked about
            # a value the operator already knows (a contact, a fact) is theirs, wherever else it is written
            chosen = [w for w in provenance.foreign(provenance.values_of(targets), theirs, ours) if not self._theirs(w)]
            chosen += [v for v in provenance.names(capability, step.args) if provenance.named_only_in(v, plan.untrusted, words)
                       and not self._theirs(v)]
            if chosen:
                out.append(Finding(step.index, "block", f"step {n} would go to {', '.join(chosen[:3])}, found only in content "
                                                        f"you did not write; {SAY_IT}"))
            rest = {k: v for k, v in step.args.items() if k not in targets}
            quoted = {k: v for k, v in provenance.values_of(rest).items() if k not in thread}
            carried = [w for w in provenance.foreign(quoted, theirs, ours) if not self._theirs(w)]
            if carried:
                out.append(Finding(step.index, "flag", f"step {n} carries {', '.join(carried[:3])}, found only in content "
                                                       "you did not write"))
            for ref in provenance.references(step.args, capability.recipient_fields):
                out.append(Finding(step.index, "flag", f"step {n} would send what step {ref + 1} found to the outside, in a "
                                                       "plan made while reading content you did not write"))
        return out

    def _check_step(
        self, plan: Plan, step: Step, capabilities: Mapping[str, Capability],
        operator_addresses: set[str], untrusted_addresses: set[str],
    ) -> list[Finding]:
        capability = capabilities.get(step.capability)
        if plan.allowed and step.capability not in plan.allowed:
            return [Finding(step.index, "block", _not_allowed(plan, step))]
        if capability is None:
            enable = enabling(step.capability)
            return [Finding(step.index, "block", f"step {step.index + 1} uses {step.capability}, which I do not have"
                                                 + (f"; to enable it, {enable}" if enable else ""))]
        out: list[Finding] = []
        if not _has_refs(step.args):
            try:
                capability.parse(step.args)
            except ValidationError as err:
                missing = ", ".join(".".join(map(str, e["loc"])) for e in err.errors()[:5])
                out.append(Finding(step.index, "block", f"step {step.index + 1} ({step.capability}) is missing or has bad fields: {missing}"))
        if not capability.side_effect:
            return out
        for ref in provenance.chosen_by_results(provenance.targets(capability, step.args), plan.steps) if self.provenance else ():
            out.append(Finding(step.index, "block", f"step {step.index + 1} would reach whoever step {ref + 1}'s result names, "
                                                    f"and what it reads may have been written by someone else; {SAY_IT}"))
        for address in (recipients_of(capability, step.args) + _addresses(capability, step.args) if self.provenance else ()):
            addr = EMAIL.search(address)
            low = addr.group(0).lower() if addr else address.lower()
            # read as the model reads it too: lookalike letters do not make someone else's address a new one
            read = EMAIL.search(reveal(address).inspect)
            foreign = low in untrusted_addresses or (read is not None and read.group(0).lower() in untrusted_addresses)
            if foreign and low not in operator_addresses and not self._theirs(low):
                out.append(Finding(step.index, "block", f"step {step.index + 1} would reach {low}, an address that only appears "
                                                        f"in content you did not write; {SAY_IT}"))
            elif plan.untrusted and low not in operator_addresses and "${steps." not in address:
                # a plan made while reading someone else's text, reaching a person the operator never named
                out.append(Finding(step.index, "flag",
                                   f"step {step.index + 1} would reach {low}, whom you did not name, in a plan made from content you did not write"))
        text = " ".join(s for k in OUTBOUND_TEXT for s in provenance.strings(step.args.get(k)))
        for kind in pii_in(text):
            out.append(Finding(step.index, "flag", f"step {step.index + 1} sends {kind} in its text"))
        return out

    def check_result(self, step: Step, output: Mapping[str, Any]) -> Verdict:
        """After a step: a partial success (some recipients refused) is surfaced, never hidden."""
        findings = []
        refused = output.get("refused")
        if refused:
            findings.append(Finding(step.index, "flag", f"the server refused {', '.join(map(str, refused))}"))
        return Verdict(tuple(findings))


def _not_allowed(plan: Plan, step: Step) -> str:
    """Why a step outside the plan's allow-list is refused: its specialist's, where that is what rules it out."""
    specialist = named(plan.specialist)
    if specialist is not None and not specialist.may(step.capability):
        return f"step {step.index + 1} ({step.capability}): {refusal(specialist.name, step.capability)}"
    return f"step {step.index + 1} uses {step.capability}, which '{plan.intent}' may not use"


def _addresses(capability: Capability, args: dict[str, Any]) -> list[str]:
    """Addresses in target fields the capability does not list as recipients (bcc, a reply-to, a mailto link)."""
    extra = {k: v for k, v in provenance.targets(capability, args).items() if k not in capability.recipient_fields}
    return [a for s in provenance.strings(extra) if "${steps." not in s for a in EMAIL.findall(s)]


def _hidden_text(plan: Plan, capabilities: Mapping[str, Capability], seen: tuple[Revealed, ...]) -> list[Finding]:
    """Text the operator could not see, or that was disguised, in what the plan was made from: each step that
    acts is held for approval with that text written out."""
    hidden = [h for s in seen for h in s.hidden]
    ways = list(dict.fromkeys(w for s in seen for w in s.found))
    if not ways:
        return []
    shown = "; ".join(f"'{h[:200]}'" for h in hidden[:3])
    line = f"this request came with hidden text: {shown}" if hidden else "this request came with disguised text"
    line += f" ({', '.join(ways)})"
    out = [Finding(None, "flag", line)]
    for step in plan.steps:
        capability = capabilities.get(step.capability)
        if capability is not None and capability.side_effect:
            out.append(Finding(step.index, "flag", line))
    return out


def _has_refs(args: dict[str, Any]) -> bool:
    return any("${steps." in s for s in provenance.strings(args))
