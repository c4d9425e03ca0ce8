import json
import time
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from pydantic import SecretStr

from integrations.capability import EffectContext
from integrations.crm import Crm, Mirror, crm_for_store
from integrations.crm_capabilities import contact_capabilities
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
