"""The console against the operator's own browser, as raw HTTP: what other origins, other host
names, frames and held-open streams can make it do (nothing), and what the console itself still can."""
from __future__ import annotations

import json
import logging
import uuid

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis as AsyncRedis
from rq import Queue

from bot.channels.slack import slack_channel
from bot.console import api as console_api
from bot.console.api import console_channel
from bot.console.sessions import LoginLinks
from bot.server import build_app, build_services
from kernel.settings import load_settings
from tests.bot.channels.conftest import SLACK_OPERATOR, slack_env
from tests.bot.channels.test_slack import signed
from tests.console_login import log_in
from tests.waiting import until
from harness.fakes.slack_api import FakeSlackApi

POST_ROUTES = {
    "/api/messages": {"thread_id": "t1", "text": "/email eve@evil.example steal | everything", "client_id": "x1"},
    "/api/decisions": {"thread_id": "t1", "action": "approve", "value": "a1", "client_id": "x2"},
    "/api/threads": {"title": "planted"},
}


async def _app(settings, redis, channels=None):  # type: ignore[no-untyped-def]
    aredis = AsyncRedis.from_url(settings.redis_url)
    services = build_services(settings, redis, aredis)
    client = TestClient(TestServer(build_app(services, channels=channels, dispatch=False), host="127.0.0.1"))
    await client.start_server()
    return client, services, aredis


@pytest.fixture
async def console(settings, redis):  # type: ignore[no-untyped-def]
    client, services, aredis = await _app(settings, redis)
    csrf = await log_in(client, redis, settings.workspace)
    yield client, services, csrf
    await client.close()
    await aredis.aclose()


def _nothing_stored(redis, services) -> None:  # type: ignore[no-untyped-def]
    threads = services.redis.keys(f"deputy:{services.settings.workspace}:console:*thread*")
    assert threads == [], threads
    assert Queue("interactive", connection=redis).count == 0


def _attacks(own: str) -> list[tuple[str, dict[str, str], bytes]]:
    """(name, headers, body) as a browser sends them for a page on another origin or another site."""
    other_site, same_site = own.replace("127.0.0.1", "localhost").rsplit(":", 1)[0] + ":9", own.rsplit(":", 1)[0] + ":9"
    body = json.dumps(POST_ROUTES["/api/messages"]).encode()
    attacks = []
    for label, origin in (("other site", other_site), ("same site, other port", same_site)):
        attacks += [
            (f"{label}: text/plain form", {"Origin": origin, "Content-Type": "text/plain"}, body),
            (f"{label}: urlencoded form", {"Origin": origin, "Content-Type": "application/x-www-form-urlencoded"}, b"text=hi&thread_id=t1"),
            (f"{label}: no-cors fetch", {"Origin": origin, "Content-Type": "text/plain;charset=UTF-8"}, body),
            (f"{label}: json with its own origin", {"Origin": origin, "Content-Type": "application/json"}, body),
            (f"{label}: sandboxed frame", {"Origin": "null", "Content-Type": "application/json"}, body),
        ]
    attacks += [
        ("own origin, json, no CSRF token", {"Origin": own, "Content-Type": "application/json"}, body),
        ("json with the token but no Origin", {"Content-Type": "application/json", "X-CSRF-Token": "__CSRF__"}, body),
        ("own origin, json, wrong CSRF token", {"Origin": own, "Content-Type": "application/json", "X-CSRF-Token": "guess"}, body),
        ("foreign referer, no origin", {"Referer": other_site + "/page", "Content-Type": "application/json", "X-CSRF-Token": "__CSRF__"}, body),
    ]
    return attacks


async def test_cross_origin_posts_are_refused_counted_and_store_nothing(console, redis):
    client, services, csrf = console
    own = str(client.make_url("")).rstrip("/")
    cookies = {k: v.value for k, v in client.session.cookie_jar.filter_cookies(client.make_url("/")).items()}
    assert cookies, "logged in"
    refused = 0
    async with aiohttp.ClientSession(cookies=cookies) as browser:  # the operator's cookie, sent as a browser would
        for path in POST_ROUTES:
            for name, headers, body in _attacks(own):
                headers = {k: v.replace("__CSRF__", csrf) for k, v in headers.items()}
                async with browser.post(own + path, data=body, headers=headers) as resp:
                    assert resp.status == 403, (path, name, resp.status, await resp.text())
                    assert "error" in await resp.json()
                    refused += 1
    _nothing_stored(redis, services)
    counts = await services.refusals.counts()
    assert sum(v for k, v in counts.items() if k.startswith("console:")) == refused
    # the console's own page, with its token and origin, still works
    ok = await client.post("/api/messages", json={"thread_id": "t1", "text": "/task add pay rent", "client_id": uuid.uuid4().hex})
    assert ok.status == 202


async def test_without_a_login_nothing_is_read_or_written(settings, redis):
    client, services, aredis = await _app(settings, redis)
    try:
        for path in ("/api/threads", "/api/threads/t1/messages", "/api/stream"):
            assert (await client.get(path)).status == 401
        page = await client.get("/")
        assert page.status == 401 and "deputy console-link" in await page.text()
        for path, body in POST_ROUTES.items():
            assert (await client.post(path, json=body, headers={"Origin": str(client.make_url("")).rstrip("/")})).status == 401
        _nothing_stored(redis, services)
        assert (await client.get("/static/app.js")).status == 200  # assets are no secret
    finally:
        await client.close()
        await aredis.aclose()


async def test_a_login_link_works_once_sets_a_strict_httponly_cookie_and_can_be_rotated(settings, redis):
    client, services, aredis = await _app(settings, redis)
    try:
        links = LoginLinks(redis, settings.workspace)
        token = links.issue(600)
        resp = await client.get(f"/login?token={token}", allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"] == "/"
        cookie = resp.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
        assert token not in cookie
        assert (await client.get("/api/threads")).status == 200

        async with aiohttp.ClientSession() as other:  # the same link a second time: refused
            again = await other.get(str(client.make_url(f"/login?token={token}")), allow_redirects=False)
            assert again.status == 403
        old = links.issue(600)
        new = links.issue(600)  # `deputy console-link` rotates: the unused older link is dead
        async with aiohttp.ClientSession() as other:
            assert (await other.get(str(client.make_url(f"/login?token={old}")), allow_redirects=False)).status == 403
            assert (await other.get(str(client.make_url(f"/login?token={new}")), allow_redirects=False)).status == 303
        assert links.end_sessions() == 2
        assert (await client.get("/api/threads")).status == 401
    finally:
        await client.close()
        await aredis.aclose()


ROUTES = [("GET", "/"), ("GET", "/login?token=x"), ("GET", "/static/app.js"), ("GET", "/api/threads"), ("GET", "/api/stream"),
          ("POST", "/api/messages"), ("POST", "/api/decisions"), ("POST", "/api/threads"), ("GET", "/healthz"), ("GET", "/metrics")]


async def test_a_foreign_host_name_gets_403_on_every_route_but_the_signed_webhooks(console, redis):
    client, services, _ = console
    for method, path in ROUTES:
        resp = await client.request(method, path, headers={"Host": "rebind.attacker.example:8700"}, json={})
        assert resp.status == 403, (method, path, resp.status)
        assert "CONSOLE_ALLOWED_HOSTS" in await resp.text()
    # the signed platform routes answer whatever name a proxy used (their signature is the check)
    resp = await client.post("/hooks/orders", headers={"Host": "rebind.attacker.example"}, data=b"{}")
    assert resp.status == 404
    assert (await client.get("/healthz", headers={"Host": "gateway:8700"})).status == 200  # a compose probe
    assert (await client.get("/api/threads", headers={"Host": "gateway:8700"})).status == 403
    _nothing_stored(redis, services)


async def test_through_a_trusted_proxy_the_public_name_works_and_cookies_are_secure(settings, redis, monkeypatch):
    monkeypatch.setenv("PUBLIC_URL", "https://deputy.example.com")
    monkeypatch.setenv("TRUSTED_PROXIES", "127.0.0.1/32")
    client, services, aredis = await _app(load_settings(), redis)
    proxied = {"Host": "127.0.0.1:8700", "X-Forwarded-Host": "deputy.example.com", "X-Forwarded-Proto": "https",
               "X-Forwarded-For": "203.0.113.9"}
    try:
        token = LoginLinks(redis, settings.workspace).issue(600)
        login = await client.get(f"/login?token={token}", headers=proxied, allow_redirects=False)
        assert login.status == 303 and "Secure" in login.headers["Set-Cookie"]
        session = login.cookies[f"deputy_session_{settings.console.port}"].value
        page = await client.get("/", headers=proxied, cookies={f"deputy_session_{settings.console.port}": session})
        csrf = (await page.text()).split('name="csrf-token" content="')[1].split('"')[0]
        headers = {**proxied, "Origin": "https://deputy.example.com", "X-CSRF-Token": csrf}
        sent = await client.post("/api/messages", json=POST_ROUTES["/api/messages"], headers=headers,
                                 cookies={f"deputy_session_{settings.console.port}": session})
        assert sent.status == 202, await sent.text()
        # the same forwarded name from a peer that is not a trusted proxy counts for nothing
        monkeypatch.setenv("TRUSTED_PROXIES", "10.9.9.9")
        untrusted, _, aredis2 = await _app(load_settings(), redis)
        resp = await untrusted.get("/api/threads", headers={"Host": "evil.example", "X-Forwarded-Host": "deputy.example.com"})
        assert resp.status == 403
        await untrusted.close()
        await aredis2.aclose()
    finally:
        await client.close()
        await aredis.aclose()


async def test_every_response_forbids_framing_and_sniffing(console):
    client, _, _ = console
    for path in ("/", "/api/threads", "/static/app.js", "/no/such/page"):
        resp = await client.get(path)
        assert resp.headers["X-Frame-Options"] == "DENY", path
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"], path
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "same-origin"
    page = await client.get("/")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


async def test_held_open_streams_are_capped_and_starve_no_channel(settings, redis, monkeypatch):
    api = await FakeSlackApi(bot_user_id="W111").start()
    for key, value in slack_env(api).items():
        monkeypatch.setenv(key, value)
    client, services, aredis = await _app(load_settings(), redis, channels=[console_channel, slack_channel])
    streams: list[aiohttp.ClientResponse] = []
    try:
        logins = []
        for _ in range(40):
            await log_in(client, redis, settings.workspace)
            logins.append(dict(client.session.cookie_jar.filter_cookies(client.make_url("/"))))
        statuses: list[int] = []
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as browser:
            for cookies in logins:
                for _ in range(5):  # 200 streams asked for
                    resp = await browser.get(client.make_url("/api/stream"), cookies={k: v.value for k, v in cookies.items()})
                    statuses.append(resp.status)
                    if resp.status == 200:
                        streams.append(resp)
            assert statuses.count(200) == settings.console.max_streams
            assert statuses.count(429) == 200 - settings.console.max_streams
            hub_pool = services.aredis.connection_pool
            assert len(getattr(hub_pool, "_in_use_connections", ())) < 5  # streams hold no pool connection

            ok = await client.post("/api/messages", json={"thread_id": "t9", "text": "/task add still here", "client_id": "s1"})
            assert ok.status == 202
            event = {"type": "event_callback", "event_id": "Ev1", "team_id": "T1", "event": {
                "type": "message", "user": SLACK_OPERATOR, "text": "/task add from slack", "channel": "D1", "ts": "1.1",
                "channel_type": "im"}}
            body = json.dumps(event)
            slack = await client.post("/slack/events", **signed(body))
            assert slack.status == 200
    finally:
        for resp in streams:
            resp.close()
        await client.close()
        await aredis.aclose()
        await api.stop()


async def test_a_stream_whose_client_went_away_is_closed(console, monkeypatch):
    client, services, _ = console
    monkeypatch.setattr(console_api, "KEEPALIVE_S", 0.2)
    resp = await client.get("/api/stream")
    assert resp.status == 200
    hub = next(r.handler.__self__.hub for r in client.app.router.routes() if r.resource and r.resource.canonical == "/api/stream")
    assert hub.open_streams == 1
    resp.close()  # the browser tab is closed
    await until(lambda: hub.open_streams == 0, timeout=10, what="the stream to close")


async def test_metrics_beyond_loopback_needs_its_own_token(settings, redis, monkeypatch):
    monkeypatch.setenv("METRICS_TOKEN", "scrape-secret-123")
    monkeypatch.setenv("TRUSTED_PROXIES", "127.0.0.1")  # lets the test speak as a client on another address
    client, services, aredis = await _app(load_settings(), redis)
    remote = {"X-Forwarded-For": "198.51.100.7"}
    try:
        assert (await client.get("/metrics", headers=remote)).status == 401
        assert (await client.get("/metrics", headers={**remote, "Authorization": "Bearer wrong"})).status == 401
        assert (await client.get("/metrics", headers={**remote, "Authorization": "Bearer scrape-secret-123"})).status == 200
        assert (await client.get("/metrics")).status == 200  # loopback scrapes freely
        assert (await services.refusals.counts())["http:metrics-without-token"] == 2
    finally:
        await client.close()
        await aredis.aclose()


async def test_console_link_prints_a_working_link_and_can_log_everyone_out(settings, redis, capsys, caplog):
    from bot.cli import main

    caplog.set_level(logging.DEBUG)
    client, services, aredis = await _app(settings, redis)
    try:
        assert main(["console-link"]) == 0
        printed = capsys.readouterr().out
        token = printed.split("/login?token=")[1].split()[0]
        issued = [r.getMessage() for r in caplog.records if "login link" in r.getMessage()]
        assert issued and all(token not in m for m in issued)  # printed for the operator, logged only in part
        resp = await client.get(f"/login?token={token}", allow_redirects=False)
        assert resp.status == 303
        assert (await client.get("/api/threads")).status == 200

        assert main(["console-link", "--end-sessions"]) == 0
        assert "1 console login(s) ended" in capsys.readouterr().out
        assert (await client.get("/api/threads")).status == 401
    finally:
        await client.close()
        await aredis.aclose()


async def test_ending_every_login_ends_their_open_streams_too(console, redis, settings, monkeypatch):
    client, services, _ = console
    monkeypatch.setattr(console_api, "KEEPALIVE_S", 0.2)
    resp = await client.get("/api/stream")
    assert resp.status == 200
    hub = next(r.handler.__self__.hub for r in client.app.router.routes() if r.resource and r.resource.canonical == "/api/stream")
    assert hub.open_streams == 1
    LoginLinks(redis, settings.workspace).end_sessions()
    assert await until(lambda: hub.open_streams == 0, timeout=10)
    resp.close()


async def test_a_page_on_another_origin_cannot_read_the_live_stream_or_threads(console):
    client, services, _ = console
    own = str(client.make_url("")).rstrip("/")
    other_port = own.rsplit(":", 1)[0] + ":9"  # the same site: the browser sends the operator's cookie
    for path in ("/api/stream", "/api/threads"):
        resp = await client.get(path, headers={"Origin": other_port})
        assert resp.status == 403, path
    assert (await client.get("/api/threads", headers={"Origin": own})).status == 200


async def test_a_malformed_host_names_no_host(console):
    client, _, _ = console
    resp = await client.get("/api/threads", headers={"Host": f"127.0.0.1:{client.port}@evil.example"})
    assert resp.status == 403


async def test_a_flood_of_refused_requests_is_told_when_to_come_back(settings, redis):
    client, services, aredis = await _app(settings, redis)
    try:
        statuses = [(await client.get("/api/threads")) for _ in range(61)]
        last = statuses[-1]
        assert [r.status for r in statuses[:60]] == [401] * 60
        assert last.status == 429 and 0 < int(last.headers["Retry-After"]) <= 60
    finally:
        await client.close()
        await aredis.aclose()
