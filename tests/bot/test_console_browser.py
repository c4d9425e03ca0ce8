"""The console page in a real headless browser: type a message, see the reply, click a card button."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis as AsyncRedis

from bot.console.sessions import LoginLinks
from bot.server import build_app, build_services

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs Debian's chromium)"),
]
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]


@pytest.fixture
def worker(settings):
    env = {**os.environ, "REDIS_URL": settings.redis_url, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "worker", "--workers", "1"], env=env, cwd=ROOT)
    yield proc
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
async def console_url(settings, redis, worker):
    aredis = AsyncRedis.from_url(settings.redis_url)
    server = TestServer(build_app(build_services(settings, redis, aredis)), host="127.0.0.1")
    await server.start_server()
    token = LoginLinks(redis, settings.workspace).issue(600)
    yield str(server.make_url(f"/login?token={token}"))
    await server.close()
    await aredis.aclose()


async def test_type_a_message_see_the_reply_click_the_card_button(console_url, tmp_path):
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 390, "height": 800})  # phone width
        await page.goto(console_url)
        await expect(page.locator("#status")).to_have_text("live", timeout=10_000)

        box = page.get_by_role("textbox", name="Message")
        await box.fill("/remember the VAT number is ES-B12345678")
        await box.press("Enter")
        await expect(page.locator(".msg.deputy").last).to_contain_text("Noted.", timeout=20_000)

        await box.fill("/task add file the quarterly VAT return")
        await box.press("Enter")
        card = page.locator(".card").last
        await expect(card).to_contain_text("file the quarterly VAT return", timeout=20_000)
        await page.screenshot(path=str(tmp_path / "console.png"))

        await card.get_by_role("button", name="Mark done").click()
        await expect(card.locator(".resolution")).to_have_text("Done ✓", timeout=20_000)
        await expect(page.locator(".card button")).to_have_count(0)

        # a reload shows the same thread, from the server
        await page.reload()
        await expect(page.locator(".msg.user")).to_have_count(2, timeout=10_000)
        await expect(page.locator(".card .resolution")).to_have_text("Done ✓")
        await browser.close()
