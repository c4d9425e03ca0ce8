"""Pages the operator merely visits, in the operator's own logged-in chromium, try to act through the
console: auto-submitted forms, no-cors fetches, a frame around the console. Nothing is stored or
decided, every attempt that reaches the console is refused and counted, and the console still works."""
from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis as AsyncRedis
from rq import Queue

from bot.console.sessions import LoginLinks
from bot.server import build_app, build_services
from memory.tasks import TaskStore
from tests.bot.test_console_browser import CHROMIUM, CHROMIUM_ARGS, worker  # noqa: F401  (fixture)
from tests.waiting import until

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs Debian's chromium)"),
]
ROUTES = ("/api/messages", "/api/decisions", "/api/threads")
BODY = '{"thread_id": "t1", "text": "/task add planted by a web page", "action": "approve", "value": "a1", "client_id": "evil"}'


def attack_page(console: str) -> str:
    """Per route: a text/plain form, a urlencoded form (each into its own hidden frame) and a no-cors fetch."""
    forms, fetches = [], []
    for i, route in enumerate(ROUTES):
        name = BODY[:-1] + ', "pad": "'  # the browser sends name=value: still one JSON object
        forms.append(
            f'<iframe name="t{i}a" hidden></iframe><form id="f{i}a" target="t{i}a" method="post" enctype="text/plain" '
            f'action="{console}{route}"><input type="hidden" name=\'{name}\' value=\'"}}\'></form>'
            f'<iframe name="t{i}b" hidden></iframe><form id="f{i}b" target="t{i}b" method="post" '
            f'action="{console}{route}"><input type="hidden" name="text" value="/task add planted"></form>'
        )
        fetches.append(f'fetch("{console}{route}", {{method: "POST", mode: "no-cors", credentials: "include", '
                       f'headers: {{"Content-Type": "text/plain"}}, body: {BODY!r}}});')
    return (
        "<!doctype html><html><body><h1>Cheap flights</h1>" + "".join(forms)
        + f'<iframe id="console" src="{console}/#t1" style="opacity:0.01" width="600" height="400"></iframe>'
        + "<script>for (const f of document.forms) f.submit();" + "".join(fetches) + "</script></body></html>"
    )


@pytest.fixture
async def console(settings, redis, worker):  # type: ignore[no-untyped-def]  # noqa: F811
    aredis = AsyncRedis.from_url(settings.redis_url)
    services = build_services(settings, redis, aredis)
    server = TestServer(build_app(services), host="127.0.0.1")
    await server.start_server()
    yield server, services
    await server.close()
    await aredis.aclose()


@pytest.fixture
async def attacker(console):  # type: ignore[no-untyped-def]
    server, _ = console
    own = str(server.make_url("")).rstrip("/")

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=attack_page(own), content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    evil = TestServer(app, host="127.0.0.1")
    await evil.start_server()
    yield evil.port
    await evil.close()


async def test_pages_on_other_origins_cannot_act_through_the_logged_in_console(console, attacker, redis, settings, tmp_path):
    from playwright.async_api import async_playwright, expect

    server, services = console
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context()
        tab = await context.new_page()
        await tab.goto(str(server.make_url(f"/login?token={LoginLinks(redis, settings.workspace).issue(600)}")))
        await expect(tab.locator("#status")).to_have_text("live", timeout=10_000)

        sent = 0
        for origin, cookieless_frame in ((f"http://localhost:{attacker}", 1), (f"http://127.0.0.1:{attacker}", 0)):
            # another site, then the same site on another port. From another site the SameSite=Strict cookie is
            # not sent, so even the frame's page load is refused (and counted); from the same site it loads,
            # and the browser refuses to show it
            evil = await context.new_page()
            await evil.goto(origin + "/")
            sent += 3 * len(ROUTES) + cookieless_frame

            async def all_counted() -> bool:
                return sum((await services.refusals.counts()).values()) >= sent

            await until(all_counted, timeout=20, interval=0.1, what=f"{sent} refusals counted")
            frame = evil.frame_locator("#console")
            await expect(frame.locator("#composer")).to_have_count(0)  # the console refuses to be framed
            await evil.screenshot(path=str(tmp_path / f"attack-{attacker}-{origin.split(':')[1][2:]}.png"))
            await evil.close()

        counts = await services.refusals.counts()
        assert sum(v for k, v in counts.items() if k.startswith("console:")) == sent, counts
        assert TaskStore(redis, settings.workspace).list() == []
        assert Queue("interactive", connection=redis).count == 0

        # used normally, the console still works in the same browser
        box = tab.get_by_role("textbox", name="Message")
        await box.fill("/task add call the accountant")
        await box.press("Enter")
        await expect(tab.locator(".card").last).to_contain_text("call the accountant", timeout=20_000)
        assert [t.title for t in TaskStore(redis, settings.workspace).list()] == ["call the accountant"]
        await browser.close()
