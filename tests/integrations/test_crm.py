import json
import time
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from pydantic import SecretStr

from integrations.breaker import CircuitBreaker
from integrations.capability import EffectContext, PermanentError
from integrations.crm import Crm, Mirror, crm_for_store
from integrations.crm_capabilities import contact_capabilities, crm_capabilities
from integrations.invoke import call
from integrations.ledger import EffectLedger
from integrations.webhooks import SIGNATURE_HEADER, verify
from memory.facts import FactStore
from memory.tasks import TaskStore


class _Target:
    def __init__(self, url: str) -> None:
        self.url, self.secret = url, SecretStr("mirror-secret")


def _receiver():
    got = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((self.headers["Idempotency-Key"], self.headers[SIGNATURE_HEADER], body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, got


def _crm(redis, mirror=None) -> Crm:
    crm = crm_for_store(FactStore(redis, "acme"), TaskStore(redis, "acme"))
    crm.mirror = mirror
    return crm


def test_contact_changes_are_mirrored_signed_and_once_per_state(redis):
    server, got = _receiver()
    try:
        crm = _crm(redis, Mirror({"crm": _Target(f"http://127.0.0.1:{server.server_port}/in")}, "crm"))
        crm.save_contact("Ana Lopez", {"email": "ana@lopez.example"})
        crm.save_contact("Ana", {"email": "ana@lopez.example"})  # nothing changed: nothing posted
        crm.update_deal("Acme", {"stage": "proposal"})
    finally:
        server.shutdown()
    assert len(got) == 2
    key, signature, body = got[0]
    verify("mirror-secret", body, signature, now=time.time())
    event = json.loads(body)
    assert event["event"] == "crm.contact.updated" and event["data"]["email"] == "ana@lopez.example" and event["id"] == key
    assert json.loads(got[1][2])["data"]["stage"] == "proposal"


def test_lookup_keeps_its_shape_and_a_sent_email_is_linked_to_the_contact(redis):
    crm = _crm(redis)
    crm.save_contact("Ana Lopez", {"email": "ana@newco.example", "company": "Acme"})
    caps = {c.name: c for c in contact_capabilities(crm)}
    ctx = EffectContext(idempotency_key="r1:0", workspace="acme", trace_id="t", run_id="r1")
    found = caps["contacts.lookup"].run(caps["contacts.lookup"].parse({"query": "Ana"}), ctx)
    assert [(c.name, c.email, c.company) for c in found.contacts] == [("Ana Lopez", "ana@newco.example", "Acme")]

    assert crm.link(["ana@newco.example"], "email.sent", "Following up", "r1:1") == 1
    assert crm.link(["ana@newco.example"], "email.sent", "Following up", "r1:1") == 0


def _caps(crm: Crm):  # type: ignore[no-untyped-def]
    caps = {c.name: c for c in [*contact_capabilities(crm), *crm_capabilities(crm)]}
    ledger, breaker = EffectLedger(crm.contacts.redis, "acme"), CircuitBreaker(crm.contacts.redis, "crm", "acme")

    def run(name: str, args: dict, key: str):  # type: ignore[no-untyped-def]
        return call(caps[name], args, EffectContext(key, "acme", "t", key.split(":")[0]), ledger, breaker)

    return caps, run


def test_an_undone_contact_update_makes_the_previous_details_current_again_once(redis):
    crm = _crm(redis)
    crm.save_contact("Ana Lopez", {"email": "ana@lopez.example", "phone": "+34 600 000 001"})
    caps, run = _caps(crm)
    args = {"email": "ana@newco.example", "name": "Ana Lopez", "company": "Newco"}
    saved = run("contacts.upsert", args, "r1:0").output.model_dump()
    back = caps["contacts.upsert"].undo(args, saved)

    first = run("contacts.restore", back, "undo-r1:0").output
    assert run("contacts.restore", back, "undo-r1:0").replayed
    assert run("contacts.restore", back, "undo-again:0").output.attributes == {"email": "already", "company": "already"}
    assert first.attributes == {"email": "restored", "company": "retired"}
    ana = crm.contacts.get("person:ana-lopez")
    assert (ana.email, ana.get("phone"), ana.get("company")) == ("ana@lopez.example", "+34 600 000 001", "")
    # the history says what the undo did: the new address was taken back, the old one put back from version 1
    history = crm.contacts.facts.history("person:ana-lopez/email")
    assert [(f.value, f.undone, f.restored_from) for f in history] == [
        ("ana@lopez.example", False, None), ("ana@newco.example", True, None), ("ana@lopez.example", False, 1)]
    assert crm.contacts.by_email("ana@newco.example") is None  # only the undone change had that address


def test_an_undone_new_contact_is_gone_and_a_contact_changed_since_is_left_alone(redis):
    crm = _crm(redis)
    caps, run = _caps(crm)
    args = {"name": "Bob Stone", "email": "bob@stone.example"}
    made = run("crm.contact.upsert", args, "r2:0").output.model_dump()
    run("contacts.restore", caps["crm.contact.upsert"].undo(args, made), "undo-r2:0")
    assert crm.contacts.find("Bob") == [] and crm.contacts.by_email("bob@stone.example") is None

    saved = run("crm.contact.upsert", {"name": "Cleo", "email": "cleo@a.example"}, "r3:0").output.model_dump()
    crm.save_contact("Cleo", {"email": "cleo@b.example"})
    with pytest.raises(PermanentError, match="email changed again since"):
        run("contacts.restore", caps["crm.contact.upsert"].undo({}, saved), "undo-r3:0")
    assert crm.contacts.by_email("cleo@b.example").name == "Cleo"


def test_an_undone_deal_change_puts_the_stage_back_and_an_undone_new_deal_is_gone(redis):
    crm = _crm(redis)
    caps, run = _caps(crm)
    crm.update_deal("Acme", {"stage": "proposal", "value": "5000"})
    moved = run("crm.deal.update", {"name": "Acme", "stage": "won"}, "r4:0").output.model_dump()
    made = run("crm.deal.update", {"name": "Globex", "stage": "qualified"}, "r5:0").output.model_dump()
    assert caps["crm.deal.update"].compensation == "crm.deal.restore"
    run("crm.deal.restore", caps["crm.deal.update"].undo({}, moved), "undo-r4:0")
    run("crm.deal.restore", caps["crm.deal.update"].undo({}, made), "undo-r5:0")
    assert [(d.name, d.get("stage"), d.get("value")) for d in crm.deals.all()] == [("Acme", "proposal", "5000")]
    # a change that changed nothing has nothing to undo
    same = run("crm.deal.update", {"name": "Acme", "stage": "proposal"}, "r6:0").output.model_dump()
    assert caps["crm.deal.update"].undo({}, same) is None
