"""Policy and risk: deny by default, rules force approval, scores explain themselves, bad policy files say where."""
from __future__ import annotations

import pytest
from pydantic import BaseModel

from agents.inspector import Inspector, pii_in
from agents.plan import Origin, Plan, Step
from agents.playbooks import fill, load_playbooks
from agents.policy import PolicyError, load_policy
from agents.risk import assess
from integrations.capability import Capability, RetryPolicy, RiskClass


class Args(BaseModel):
    to: list[str] = []
    amount: float = 0
    body: str = ""


def cap(name: str, risk: RiskClass, side_effect: bool = True, reversible: bool = True) -> Capability:
    return Capability(name, name, Args, Args, risk, side_effect, reversible, None, "ledger", RetryPolicy(),
                      run=lambda a, c: a, recipient_fields=("to",), amount_field="amount")


class Known:
    def known(self, address: str) -> bool:
        return address == "ana@acme.io"


def test_unknown_capabilities_are_denied():
    policy = load_policy()
    result = assess(None, "bank.wire", {}, policy)
    assert result.decision == "deny" and "no capability" in result.why
    unlisted = assess(cap("crm.delete", RiskClass.INTERNAL_WRITE), "crm.delete", {}, policy)
    assert unlisted.decision == "deny"


def test_reads_run_at_once_and_external_email_needs_approval():
    policy = load_policy()
    assert assess(cap("tasks.list", RiskClass.READ, side_effect=False), "tasks.list", {}, policy).decision == "auto"
    email = assess(cap("email.send", RiskClass.EXTERNAL_WRITE, reversible=False), "email.send",
                   {"to": ["new@client.example"]}, policy, Known())
    assert email.decision == "approve"
    assert any("new recipient" in r for r in email.reasons) and any("cannot be undone" in r for r in email.reasons)
    known = assess(cap("email.send", RiskClass.EXTERNAL_WRITE, reversible=False), "email.send", {"to": ["ana@acme.io"]}, policy, Known())
    assert known.score < email.score


def test_refund_over_100_needs_approval_and_over_the_limit_is_refused():
    policy = load_policy()
    refund = cap("payment.refund", RiskClass.FINANCIAL)
    assert assess(refund, "payment.refund", {"amount": 150}, policy).decision == "approve"
    over = assess(refund, "payment.refund", {"amount": 5000}, policy)
    assert over.decision == "deny" and "limit" in over.why


def test_risk_threshold_escalates_auto_to_approve(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("capabilities:\n  notes.add: {autonomy: auto}\nthresholds: {approve: 20, deny: 95}\n")
    policy = load_policy(path)
    low_confidence = assess(cap("notes.add", RiskClass.INTERNAL_WRITE), "notes.add", {}, policy, confidence=0.5)
    assert low_confidence.decision == "approve" and "sure" in " ".join(low_confidence.reasons)


def test_bad_policy_file_names_the_file(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("capabilities:\n  email.send: {autonomy: sometimes}\n")
    with pytest.raises(PolicyError, match="policy.yaml is not valid"):
        load_policy(path)
    with pytest.raises(PolicyError, match="POLICY_FILE"):
        load_policy(tmp_path / "missing.yaml")


def test_pii_is_found_in_outbound_text():
    assert pii_in("card 4111 1111 1111 1111 thanks") == ["a card number"]
    assert pii_in("order 1234 5678 9012 3456") == []  # fails the Luhn check: not a card
    assert "a password" in pii_in("the password: hunter2")
    plan = Plan(run_id="r", trace_id="t", workspace="w", goal="g", intent="email", source="playbook:email",
                origin=Origin(channel="console", thread_id="t", actor="o"),
                steps=(Step(index=0, capability="email.send", args={"to": ["a@b.co"], "body": "SSN 123-45-6789"}),))
    verdict = Inspector(load_policy()).check_plan(plan, {"email.send": cap("email.send", RiskClass.EXTERNAL_WRITE)}, "")
    assert not verdict.blocked and "social security number" in verdict.reasons("flag")[0]


def test_playbooks_fill_slots_and_keep_types():
    books = load_playbooks()
    assert {"email", "schedule", "followup", "task", "webhook", "do", "triage"} <= set(books)
    assert books["email"].missing({"to": "a@b.co"}) == ["subject", "body"]
    assert fill({"to": ["{to}"], "s": "Hi {name}"}, {"to": ["a@b.co", "c@d.co"], "name": "Ana"}) == {"to": ["a@b.co", "c@d.co"], "s": "Hi Ana"}
