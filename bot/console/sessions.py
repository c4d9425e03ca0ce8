"""Console logins: one-time login links, sessions behind an HttpOnly cookie, a CSRF token per session.

A login link carries a random token; Redis keeps only its hash, and redeeming it deletes it (one
use). Redeeming creates a session: the cookie holds a random session id (never the token), Redis
keeps its hash with the session's CSRF token. `deputy console-link` issues a new link, which replaces
any unused one, and can end every session."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from redis.asyncio import Redis as AsyncRedis

from kernel.keys import Keys, WorkspaceStore

# GET the stored hash; DEL it only if it matches (a wrong guess never burns the real link)
_REDEEM = """
local stored = redis.call('GET', KEYS[1])
if stored and stored == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
"""


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    key: str  # the hash of the session id: safe to log and to use as a key
    csrf: str


class LoginLinks(WorkspaceStore):
    """The CLI's half: issue a link for the gateway to redeem (sync Redis, run once per command)."""


    def issue(self, ttl_s: int) -> str:
        token = secrets.token_urlsafe(24)
        self.redis.set(self.keys("console", "login"), _digest(token), ex=ttl_s)
        return token

    def end_sessions(self) -> int:
        ended = 0
        for key in self.redis.scan_iter(match=self.keys("console", "session", "*"), count=500):
            ended += self.redis.delete(key)
        return ended


class ConsoleSessions:
    """The gateway's half: redeem links, open and look up sessions (async Redis)."""

    def __init__(self, aredis: AsyncRedis, workspace: str, session_ttl_s: int, fixed_token: str | None = None) -> None:
        self.aredis = aredis
        self.keys = Keys(workspace)
        self.session_ttl_s = session_ttl_s
        self.fixed_token = fixed_token

    def bearer_ok(self, given: str) -> bool:
        """CONSOLE_TOKEN as `Authorization: Bearer` (scripts): no cookie, so no CSRF to fear."""
        return bool(self.fixed_token and given) and hmac.compare_digest(given.encode(), (self.fixed_token or "").encode())

    async def redeem(self, token: str) -> str | None:
        """A new session id for a valid login token, else None."""
        if not token or len(token) > 200:
            return None
        valid = self.bearer_ok(token) or bool(await self.aredis.eval(_REDEEM, 1, self.keys("console", "login"), _digest(token)))
        if not valid:
            return None
        session_id = secrets.token_urlsafe(32)
        key = self.keys("console", "session", _digest(session_id))
        async with self.aredis.pipeline(transaction=True) as pipe:  # never a session without its expiry
            pipe.hset(key, mapping={"csrf": secrets.token_urlsafe(32)})
            pipe.expire(key, self.session_ttl_s)
            await pipe.execute()
        return session_id

    async def get(self, session_id: str) -> Session | None:
        if not session_id or len(session_id) > 200:
            return None
        digest = _digest(session_id)
        csrf = await self.aredis.hget(self.keys("console", "session", digest), "csrf")
        if csrf is None:
            return None
        return Session(key=digest[:16], csrf=csrf.decode() if isinstance(csrf, bytes) else csrf)
