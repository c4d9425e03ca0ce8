"""Other web pages, and other host names, against the operator's logged-in console.

A real gateway and worker, and the operator logged in to the console in headless chromium, with an
email waiting for approval. Pages on another site (`localhost`) and on the same site at another port
(`127.0.0.1`) then auto-submit text/plain and urlencoded forms and fire no-cors fetches at every
console route that changes something, and frame the console. The same requests are replayed raw,
with the operator's cookie and a foreign (or no) Origin, and a DNS-rebinding client asks for the
console under another host name. Effects are counted where they would land: console threads and
their messages, queued jobs, tasks, approval decisions, the SMTP server."""
from __future__ import annotations

import asyncio
import html
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from harness.bench.harness import free_port
from bot.channels.console import ConsoleThreads
from harness.prove.cluster import Cluster, PrivateRedis
from harness.prove.effects import Mailbox
from harness.prove.report import Row
from harness.prove.storms import approval_card
from memory.events import EventLog
from memory.tasks import TaskStore

SCENARIO = "console attacks (browser + raw)"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
REBIND_HOST = "rebind.attacker.example"
# every word an attack writes carries one of these, so whatever of it got stored can be found
MARKS = ("evil.example", "planted")


@dataclass(frozen=True)
class Attack:
    """One change a foreign page would like the console to make."""

    route: str
    fields: dict[str, str]


def attacks(thread_id: str, approval: str) -> list[Attack]:
    return [
        Attack("/api/messages", {"thread_id": thread_id, "text": "/email eve@evil.example invoices | Every invoice, please."}),
        Attack("/api/messages", {"thread_id": thread_id, "text": "/task add planted by a web page"}),
        Attack("/api/decisions", {"thread_id": thread_id, "action": "approval.approve", "value": approval}),
        Attack("/api/threads", {"title": "planted by a web page"}),
    ]


def _body(attack: Attack, client_id: str) -> str:
    return json.dumps({**attack.fields, "client_id": client_id})


def attack_page(console: str, planned: list[Attack], tag: str) -> str:
    """Per attack: a text/plain form carrying JSON, a urlencoded form (each into its own hidden frame),
    a no-cors fetch; and the console in a frame."""
    forms, fetches = [], []
    for i, attack in enumerate(planned):
        body = _body(attack, f"evil-{tag}-{i}-plain")
        # the browser sends name=value: the JSON object closes inside the value
        name = body[:-1] + ', "pad": "'
        inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in {**attack.fields, "client_id": f"evil-{tag}-{i}-form"}.items())
        forms.append(
            f'<iframe name="t{i}a" hidden></iframe><form target="t{i}a" method="post" enctype="text/plain" '
            f'action="{console}{attack.route}"><input type="hidden" name="{html.escape(name)}" value="&quot;}}"></form>'
            f'<iframe name="t{i}b" hidden></iframe><form target="t{i}b" method="post" action="{console}{attack.route}">'
            f"{inputs}</form>"
        )
        script_body = json.dumps(_body(attack, f"evil-{tag}-{i}-fetch")).replace("</", "<\\/")
        fetches.append(f"fetch({json.dumps(console + attack.route)}, {{method: 'POST', mode: 'no-cors', credentials: 'include', "
                       f"headers: {{'Content-Type': 'text/plain'}}, body: {script_body}}});")
    return (
        "<!doctype html><html><body><h1>Cheap flights</h1>" + "".join(forms)
        + f'<iframe id="console" src="{console}/" width="600" height="400"></iframe>'
        + "<script>for (const f of document.forms) f.submit();" + "".join(fetches) + "</script></body></html>"
    )


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Tally:
    # (how, status) of every attack request that reached the gateway
    answered: list[tuple[str, int]] = field(default_factory=list)
    # reached the gateway, but the browser kept its answer from the page, on the console's own
    # Cross-Origin-Resource-Policy (no-cors fetches): the refusal counts say what the gateway answered
    withheld: list[str] = field(default_factory=list)
    # sent, and never answered
    unanswered: list[str] = field(default_factory=list)
    frames: int = 0
    # the console rendered inside a foreign page
    framed: int = 0
    # frames the gateway served but the browser would not show, on the console's own headers
    frames_blocked: int = 0

    @property
    def reached(self) -> int:
        """Attack requests that reached the gateway (frames it served and the browser would not show included)."""
        return len(self.answered) + len(self.withheld) + self.frames_blocked

    @property
    def gateway_refusals(self) -> int:
        """Refusals the gateway should have counted: the refusals the pages and clients saw, and the withheld answers."""
        return sum(status in (401, 403, 429) for _, status in self.answered) + len(self.withheld)


def _key(request: Any) -> tuple[str, str, str | None]:
    return request.method, request.url, request.post_data


async def _browser_attacks(context: Any, console: str, planned: list[Attack], tally: Tally) -> None:
    async def page(request: web.Request) -> web.Response:
        tag = request.host.split(":")[0].replace(".", "-")
        return web.Response(text=attack_page(console, planned, tag), content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        # another site, then the same site on another port (where the SameSite cookie is sent)
        for origin in (f"http://localhost:{port}", f"http://127.0.0.1:{port}"):
            expected = 3 * len(planned) + 1
            sent: list[Any] = []
            ended: list[Any] = []
            # by method, URL and body (each attack's client_id is its own); a no-cors fetch is answered,
            # then "fails" as the browser drops its opaque body
            statuses: dict[tuple[str, str, str | None], int] = {}
            evil = await context.new_page()
            evil.on("request", lambda request: sent.append(request) if request.url.startswith(console) else None)
            evil.on("response", lambda response: statuses.__setitem__(_key(response.request), response.status))
            evil.on("requestfinished", lambda request: ended.append(request))
            evil.on("requestfailed", lambda request: ended.append(request))
            await evil.goto(origin + "/")
            deadline = time.time() + 15
            while (len(sent) < expected or any(r not in ended for r in sent)) and time.time() < deadline:
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.3)  # the frame's verdict, drawn
            tally.frames += 1
            rendered = await evil.frame_locator("#console").locator("#composer").count()
            tally.framed += rendered > 0
            for request in sent:
                how = f"{origin} {request.method} {request.url[len(console):]}"
                status = statuses.get(_key(request))
                if status is None and "ERR_BLOCKED_BY_RESPONSE" in (request.failure or ""):
                    tally.withheld.append(how)
                elif status is None:
                    tally.unanswered.append(f"{how} ({request.failure})")
                elif request.method == "GET" and status < 300:
                    tally.frames_blocked += rendered == 0
                else:
                    tally.answered.append((how, status))
            await evil.close()
    finally:
        await runner.cleanup()


async def _raw_attacks(console: str, port: int, cookie: str, planned: list[Attack], tally: Tally) -> None:
    """The same changes as plain HTTP, with the operator's cookie: a foreign Origin, no Origin, no CSRF
    token; and a client that reached the gateway under a rebound host name."""
    foreign = (f"http://localhost:{port + 1}", f"http://127.0.0.1:{port + 1}")  # another site; the same site, another port
    sends: list[tuple[str, str, str, dict[str, str], str | None]] = []
    for i, attack in enumerate(planned):
        body = _body(attack, f"evil-raw-{i}")
        for origin in foreign:
            for kind, data in (("application/json", body), ("text/plain", body),
                               ("application/x-www-form-urlencoded", urlencode(attack.fields))):
                sends.append((f"raw {kind} from {origin}", "POST", attack.route, {"Content-Type": kind, "Origin": origin}, data))
        sends.append(("raw json, no Origin", "POST", attack.route, {"Content-Type": "application/json"}, body))
        sends.append(("raw json, own Origin, no CSRF token", "POST", attack.route,
                      {"Content-Type": "application/json", "Origin": console}, body))
    rebound = f"{REBIND_HOST}:{port}"
    sends.append(("rebinding", "GET", "/api/threads", {"Host": rebound}, None))
    sends.append(("rebinding", "POST", "/api/messages",
                  {"Host": rebound, "Origin": f"http://{rebound}", "Content-Type": "application/json"},
                  _body(planned[0], "evil-rebind")))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        for how, method, route, headers, data in sends:
            try:
                async with http.request(method, console + route, data=data, headers={**headers, "Cookie": cookie}) as resp:
                    tally.answered.append((f"{how} {method} {route}", resp.status))
            except (aiohttp.ClientError, asyncio.TimeoutError):
                tally.unanswered.append(f"{how} {method} {route}")


def _stored_effects(cluster: Cluster, since: float, threads_before: int, tasks_before: int, emails: int) -> dict[str, int]:
    client = cluster.redis.client()
    threads = ConsoleThreads(client, cluster.workspace)
    every = threads.threads(limit=10_000)
    events = EventLog(client, cluster.workspace)
    return {
        "messages": sum(1 for t in every for m in threads.messages(t["id"])
                        if m.get("role") == "user" and any(mark in str(m.get("text")) for mark in MARKS)),
        "threads": len(every) - threads_before,
        "jobs": len(events.since(since, kinds=["job.enqueued"])),
        "tasks": len(TaskStore(client, cluster.workspace).list()) - tasks_before,
        "approvals_decided": len(events.since(since, kinds=["approval.decided"])),
        "emails": emails,
    }


async def _run(cluster: Cluster, mail: Mailbox, chromium: str) -> tuple[Tally, dict[str, int], dict[str, int], list[str]]:
    from playwright.async_api import async_playwright, expect

    from bot.console.sessions import LoginLinks

    console = cluster.url.rstrip("/")
    client = cluster.redis.client()
    tally, checks = Tally(), []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context()
            tab = await context.new_page()
            await tab.goto(f"{console}/login?token={LoginLinks(client, cluster.workspace).issue(600)}")
            await expect(tab.locator("#status")).to_have_text("live", timeout=15_000)
            box = tab.get_by_role("textbox", name="Message")
            await box.fill("/email ana@acme.example quarterly figures | The figures are attached.")
            await box.press("Enter")
            await tab.wait_for_function("location.hash.length > 1", timeout=15_000)
            thread_id = tab.url.split("#", 1)[1]
            card = await asyncio.to_thread(approval_card, cluster, thread_id, 30)
            if card is None:
                raise RuntimeError("the operator's email never showed its approval card: nothing to attack")
            approval = next(b["value"] for b in card["buttons"] if b["action"] == "approval.approve")
            cookie = next(f"{c['name']}={c['value']}" for c in await context.cookies() if c["name"].startswith("deputy_session_"))

            planned = attacks(thread_id, approval)
            threads_before = len(ConsoleThreads(client, cluster.workspace).threads(limit=10_000))
            tasks_before = len(TaskStore(client, cluster.workspace).list())
            refusals_before = cluster.refusals()
            since = time.time()
            await _browser_attacks(context, console, planned, tally)
            await _raw_attacks(console, cluster.port, cookie, planned, tally)
            await asyncio.sleep(1.5)  # what an attack queued would be running by now
            counts = cluster.refusals()
            refused = {k: n - refusals_before.get(k, 0) for k, n in counts.items() if n != refusals_before.get(k, 0)}
            effects = _stored_effects(cluster, since, threads_before, tasks_before, len(mail.messages))

            # and the console still works for its operator, in the same browser
            await box.fill("/task add call the accountant")
            await box.press("Enter")
            try:
                await expect(tab.locator(".card").last).to_contain_text("call the accountant", timeout=20_000)
            except AssertionError:
                checks.append("after the attacks the operator's own /task add never showed its card")
        finally:
            await browser.close()
    return tally, refused, effects, checks


def browser_attacks(folder: Path) -> Row:
    chromium = chromium_path()
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        chromium = None
    if chromium is None:
        return Row(scenario=SCENARIO, attempts=0, notes="skipped: chromium not installed")
    with Mailbox() as mail:
        redis = PrivateRedis(folder / "redis").start()
        try:
            with Cluster(folder, redis, {**mail.settings(), "JOB_RETRY_BACKOFF": "1"}, workers=1).start() as cluster:
                tally, refused, effects, checks = asyncio.run(_run(cluster, mail, chromium))
        finally:
            redis.stop()
    attempts = tally.reached
    by_gateway = sum(refused.values())
    let_through = [f"{how} → {status}" for how, status in tally.answered if status not in (401, 403, 429)]
    if let_through:
        checks.append(f"{len(let_through)} attacks were not refused, e.g. {let_through[0]}")
    if by_gateway != tally.gateway_refusals:
        checks.append(f"{tally.gateway_refusals} attacks should have been refused and counted, {by_gateway} refusals counted")
    if tally.framed:
        checks.append(f"the console rendered inside {tally.framed} foreign pages")
    if not tally.answered:
        checks.append("no attack reached the gateway (nothing was proven)")
    unapproved = sum(effects.values())
    from_pages = tally.frames_blocked + len(tally.withheld) + sum(how.startswith("http") for how, _ in tally.answered)
    return Row(
        scenario=SCENARIO,
        attempts=attempts,
        unapproved_effects=unapproved,
        failed_checks=tuple(checks),
        notes=(f"{attempts} attacks reached the gateway ({from_pages} from pages in chromium, {attempts - from_pages} raw) → "
               f"{by_gateway} refused and counted ({len(tally.withheld)} answers withheld from the page by the browser), "
               f"{tally.frames_blocked} frames not shown; effects: "
               + ", ".join(f"{k} {v}" for k, v in effects.items())
               + (f"; {len(tally.unanswered)} sent but unanswered" if tally.unanswered else "")),
        details={"attempts": attempts, "refused": by_gateway + tally.frames_blocked, "refused_by_gateway": by_gateway,
                 "frames": tally.frames, "frames_blocked": tally.frames_blocked, "framed": tally.framed, "withheld": len(tally.withheld),
                 "refusals": refused, "effects": effects, "unanswered": tally.unanswered,
                 "answers": [f"{how} → {status}" for how, status in tally.answered]},
    )
