"""Log a test client into the console the way a browser does: a login link, then the page's CSRF token."""
from __future__ import annotations

import re

from aiohttp.test_utils import TestClient
from redis import Redis

from bot.console.sessions import LoginLinks

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


async def log_in(client: TestClient, redis: Redis, workspace: str, ttl_s: int = 600) -> str:
    """Redeem a fresh login link; every later request carries the cookie, the Origin and the CSRF token."""
    token = LoginLinks(redis, workspace).issue(ttl_s)
    resp = await client.get(f"/login?token={token}", allow_redirects=False)
    assert resp.status == 303, await resp.text()
    page = await (await client.get("/")).text()
    match = CSRF_META.search(page)
    assert match, page[:300]
    client.session.headers.update({"Origin": str(client.make_url("")).rstrip("/"), "X-CSRF-Token": match.group(1)})
    return match.group(1)
