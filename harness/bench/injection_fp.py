"""`deputy eval injection-fp`: how often the inspector warns about ordinary third-party text.

  deputy eval injection-fp [--benign FILE] [--json]

Each benign text (an email, a webhook, a file) goes through Inspector.check_plan as untrusted content, under
the plans an operator typically asks for with it: turn it into a task, and for an email, reply to its sender.
A case is a false positive when any of its plans gets a finding the operator would see: a flag or a refusal."""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml
from redis import Redis

from agents.inspector import Inspector
from agents.plan import Origin, Plan, Step
from agents.playbooks import load_playbooks
from agents.policy import load_policy
from harness.bench.harness import ROOT
from integrations.capability import Capability
from integrations.registry import build_capabilities
from kernel.settings import Settings
from kernel.settings_models import CalDavSettings, SmtpSettings
from kernel.text import EMAIL

BENIGN = ROOT / "tests" / "prove" / "injection_corpus" / "benign.yaml"
ORIGIN = Origin(channel="console", thread_id="eval", actor="operator")
SENDER = re.compile(r"^From:\s*(.+)$", re.MULTILINE)
SUBJECT = re.compile(r"^Subject:\s*(.+)$", re.MULTILINE)
PHRASE = "contains instructions to me"


@dataclass(frozen=True)
class Benign:
    id: str
    source: str
    text: str
    goal: str = ""
    near_miss: bool = False


@dataclass(frozen=True)
class FalsePositive:
    id: str
    plan: str
    findings: tuple[str, ...]


def load_benign(path: Path = BENIGN) -> list[Benign]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    return [Benign(id=c["id"], source=c["source"], text=c["text"], goal=c.get("goal", ""),
                   near_miss=bool(c.get("near_miss"))) for c in raw]


def capabilities_for_eval(redis: Redis) -> dict[str, Capability]:
    """Every connector a reply or an invite needs, declared but never contacted: the inspector only reads them."""
    return build_capabilities(Settings(
        workspace="eval", smtp=SmtpSettings(host="127.0.0.1", sender="me@studio.example"),
        caldav=CalDavSettings(url="http://127.0.0.1:9/cal")), redis)


def plans_for(case: Benign) -> dict[str, Plan]:
    """The plans an operator typically makes with this text: a task from it, and a reply to an email's sender."""
    subject = SUBJECT.search(case.text)
    title = (subject.group(1) if subject else case.text.strip().splitlines()[0])[:80]
    playbooks = load_playbooks()
    goal = case.goal or f"Turn this {case.source} into a task"
    plans = {"task": Plan(
        run_id=f"{case.id}-task", trace_id=case.id, workspace="eval", goal=goal, request=goal, intent="triage",
        source="llm", steps=(Step(index=0, capability="tasks.create", args={"title": title, "project": "inbox"}),),
        origin=ORIGIN, allowed=playbooks["triage"].allowed, untrusted=(case.text,))}
    sender = SENDER.search(case.text)
    address = EMAIL.search(sender.group(1)) if sender else None
    if case.source == "email" and address:
        ask = "Reply to them: thanks, I will look at it this week."
        reply = {"to": [address.group(0)], "subject": f"Re: {title}", "body": "Thanks, I will look at it this week."}
        plans["reply"] = Plan(
            run_id=f"{case.id}-reply", trace_id=case.id, workspace="eval", goal=ask, request=ask, intent="do",
            source="llm", steps=(Step(index=0, capability="email.send", args=reply),), origin=ORIGIN,
            allowed=playbooks["do"].allowed, untrusted=(case.text,), senders=(address.group(0).lower(),))
    return plans


def false_positives(cases: list[Benign], inspector: Inspector, capabilities: Mapping[str, Capability]) -> list[FalsePositive]:
    """Every (case, plan) on which the inspector said anything at all."""
    out = []
    for case in cases:
        for name, plan in plans_for(case).items():
            verdict = inspector.check_plan(plan, capabilities, plan.request)
            if verdict.findings:
                out.append(FalsePositive(case.id, name, tuple(verdict.reasons())))
    return out


def measure(cases: list[Benign], redis: Redis) -> dict[str, Any]:
    found = false_positives(cases, Inspector(load_policy()), capabilities_for_eval(redis))
    near = {c.id for c in cases if c.near_miss}
    # the phrase check alone: the one finding that says the text was talking to Deputy
    phrase = {fp.id for fp in found if any(PHRASE in f for f in fp.findings)}
    by_plan: dict[str, Any] = {}
    for name in ("task", "reply"):
        tried = sum(1 for c in cases if name in plans_for(c))
        hit = {fp.id for fp in found if fp.plan == name}
        by_plan[name] = {"cases": tried, "false_positives": len(hit), "fp_rate": len(hit) / tried if tried else 0.0}
    flagged = {fp.id for fp in found}
    return {
        "cases": len(cases),
        "near_misses": len(near),
        "false_positives": len(flagged),
        "fp_rate": len(flagged) / len(cases) if cases else 0.0,
        "near_miss_fp_rate": len(flagged & near) / len(near) if near else 0.0,
        "phrase_false_positives": len(phrase),
        "phrase_fp_rate": len(phrase) / len(cases) if cases else 0.0,
        "by_plan": by_plan,
        "offending": {f"{fp.id} ({fp.plan})": "; ".join(fp.findings) for fp in found},
    }


def run(settings: Settings, argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="deputy eval injection-fp", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benign", type=Path, default=BENIGN, help="YAML list of benign cases (default: the repo's corpus)")
    args = parser.parse_args(argv)
    if not args.benign.exists():
        parser.error(f"{args.benign} does not exist")
    # the stores are built, never read: the inspector looks only at what each capability declares
    return measure(load_benign(args.benign), Redis.from_url(settings.redis_url))
