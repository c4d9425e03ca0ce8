from memory.contacts import Contacts
from memory.deals import Deals
from memory.facts import FactStore
from memory.proposals import Proposals


def test_a_new_email_supersedes_the_old_one_and_keeps_it(redis):
    contacts = Contacts(redis, "acme")
    contacts.save("Ana Lopez", {"email": "ana@lopez.example", "company": "Acme"})
    ana, changes = contacts.save("Ana", {"email": "ana@newco.example"})
    assert ana.name == "Ana Lopez" and ana.email == "ana@newco.example" and ana.get("company") == "Acme"
    assert changes[0].before.value == "ana@lopez.example"
    history = FactStore(redis, "acme").history("person:ana-lopez/email")
    assert [f.value for f in history] == ["ana@lopez.example", "ana@newco.example"]
    assert history[0].valid_to is not None and history[1].subject == "person:ana-lopez" and history[1].attribute == "email"
    # an old address still belongs to her
    assert contacts.by_email("ana@lopez.example").subject == ana.subject


def test_a_first_name_finds_the_contact_and_a_company_finds_its_people(redis):
    contacts = Contacts(redis, "acme")
    contacts.save("Bob Reyes", {"phone": "+34 600 000 002", "company": "Verano"})
    assert contacts.find("bob")[0].get("phone") == "+34 600 000 002"
    assert contacts.find("verano")[0].name == "Bob Reyes"
    assert contacts.find("nobody") == []


def test_deal_stage_changes_are_versioned_and_closed_deals_are_not_open(redis):
    deals = Deals(redis, "acme")
    deal, _ = deals.update("Acme", {"value": "5000", "currency": "EUR"})
    assert deal.get("stage") == "lead" and deal.open
    deal, changes = deals.update("Acme", {"stage": "won"})
    assert not deal.open and changes[0].before.value == "lead"


def test_a_proposal_is_decided_once(redis):
    proposals = Proposals(redis, "acme")
    proposal = proposals.propose("Ana Lopez", {"phone": "+34 600 111 222"}, "webhook", "leads")
    assert proposals.propose("Ana Lopez", {"phone": "+34 600 111 222"}, "webhook", "leads").id == proposal.id
    assert proposals.decide(proposal.id, "confirmed", "operator").status == "confirmed"
    assert proposals.decide(proposal.id, "rejected", "operator") is None
    assert proposals.pending() == []
