from agents import contact_skills, deal_skills
from agents.skill_context import SkillContext
from agents.contact_text import parse_contact, parse_deal
from integrations.crm import crm_for_store
from kernel.messages import Intent
from memory.events import EventLog
from memory.facts import FactStore
from memory.notes import NoteStore
from memory.tasks import TaskStore


def _ctx(redis) -> SkillContext:
    ws = "acme"
    return SkillContext(workspace=ws, trace_id="t1", actor="operator", thread_id="th", tasks=TaskStore(redis, ws),
                        facts=FactStore(redis, ws), notes=NoteStore(redis, ws), events=EventLog(redis, ws), help_text="")


def _say(ctx, name, text):
    skill = {"save": contact_skills.save_contact, "find": contact_skills.find_contact, "deal": deal_skills.update_deal,
             "stale": deal_skills.stale_leads}[name]
    return skill(ctx, Intent(name=name, text=text))


def test_details_are_read_from_everyday_sentences():
    assert parse_contact("Ana Lopez's email is ana@lopez.example, she works at Acme").details == {
        "email": "ana@lopez.example", "company": "Acme"}
    assert parse_contact("Rafael switched to a new number, it's +34 612 345 678").name == "Rafael"
    assert parse_deal("move the Acme deal to won") == ("Acme", {"stage": "won"})
    assert parse_deal("the Verano deal is worth €8,000")[1] == {"value": "8000", "currency": "EUR"}


def test_saved_then_updated_contact_answers_with_what_changed(redis):
    ctx = _ctx(redis)
    assert "Saved Ana Lopez" in _say(ctx, "save", "Ana Lopez's email is ana@lopez.example, she works at Acme").text
    assert "was ana@lopez.example" in _say(ctx, "save", "Ana's new email is ana@newco.example").text
    answer = _say(ctx, "find", "what's Ana's email").text
    assert "ana@newco.example" in answer and "before: ana@lopez.example" in answer and "you told me" in answer


def test_a_confirmed_proposal_becomes_the_current_fact_and_a_rejected_one_changes_nothing(redis):
    ctx = _ctx(redis)
    _say(ctx, "save", "Ana Lopez's phone is +34 600 000 001")
    crm = crm_for_store(ctx.facts, ctx.tasks)
    wrong = crm.proposals.propose("Ana Lopez", {"phone": "+34 999 999 999"}, "webhook", "leads")
    right = crm.proposals.propose("Ana Lopez", {"phone": "+34 600 111 222"}, "webhook", "leads")
    contact_skills.reject(ctx, wrong.id)
    assert "+34 999" not in _say(ctx, "find", "Ana's phone").text
    contact_skills.confirm(ctx, right.id)
    answer = _say(ctx, "find", "Ana's phone").text
    assert "+34 600 111 222" in answer and "confirmed by you" in answer


def test_a_lead_with_an_open_deal_and_no_interaction_is_stale(redis):
    ctx = _ctx(redis)
    _say(ctx, "save", "Bob Reyes's email is bob@verano.example, he works at Verano")
    assert "stage won" in _say(ctx, "deal", "move the Verano deal to won").text
    assert "Nobody" in _say(ctx, "stale", "who haven't I heard from in 0 days").text
    _say(ctx, "deal", "the Verano deal is now in negotiation")
    crm = crm_for_store(ctx.facts, ctx.tasks)
    assert [s.contact.name for s in crm.stale(0)] == ["Bob Reyes"]
    crm.link(["bob@verano.example"], "email.sent", "Proposal", "run1:0")
    crm.clock = lambda: 0.0
    assert crm.stale(0) == []
