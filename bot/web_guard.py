"""What every HTTP request to the gateway passes first: the Host allow-list (DNS rebinding), the
proxies whose X-Forwarded-* headers are believed, and the headers that stop framing and sniffing."""
from __future__ import annotations

import hmac
import ipaddress
import logging
import re
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable

from aiohttp import web

from bot.refusals import Refusals, http_refusal

log = logging.getLogger("deputy.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# signed by the platform itself, so they answer whatever name the proxy in front of them used
SIGNED_PATHS = ("/slack/events", "/telegram/webhook", "/hooks/")
PROBE_PATHS = ("/healthz", "/metrics")
# a request that carries one of these was passed on by a proxy or tunnel, whatever address it comes from
FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Forwarded-Host")
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})

CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def parse_networks(parts: Iterable[str]) -> tuple[Network, ...]:
    """IPs or CIDRs (TRUSTED_PROXIES); a wrong one names itself."""
    nets = []
    for part in parts:
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError as err:
            raise ValueError(f"TRUSTED_PROXIES: {part!r} is not an IP address or network ({err})") from None
    return tuple(nets)


# a Host header is a name or an address, then perhaps a port; anything else (`a:1@evil`) names no host
HOST_HEADER = re.compile(r"(?:\[(?P<v6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9_.-]+))(?::\d{1,5})?")


def host_name(host_header: str) -> str:
    """`Example.COM:8700` → `example.com`; `[::1]:8700` → `::1`; a malformed header → ``."""
    match = HOST_HEADER.fullmatch(host_header.strip().lower())
    if match is None:
        return ""
    return match.group("v6") or (match.group("name") or "").rstrip(".")


@dataclass(frozen=True)
class Origin:
    """Where a request really came from and what it was addressed to, proxies taken into account."""

    client_ip: str
    host: str  # the Host header as given (name and port)
    scheme: str

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"


class WebGuard:
    def __init__(self, allowed_hosts: frozenset[str], probe_hosts: frozenset[str], trusted_proxies: tuple[Network, ...],
                 refusals: Refusals, metrics_token: str | None = None) -> None:
        self.allowed_hosts = allowed_hosts
        self.probe_hosts = probe_hosts
        self.trusted_proxies = trusted_proxies
        self.refusals = refusals
        self.metrics_token = metrics_token

    def trusted(self, remote: str | None) -> bool:
        try:
            address = ipaddress.ip_address(remote or "")
        except ValueError:
            return False
        return any(address in net for net in self.trusted_proxies)

    def origin(self, request: web.Request) -> Origin:
        """The client, host and scheme; X-Forwarded-* count only when the peer is a trusted proxy."""
        remote = request.remote or ""
        host = request.headers.get("Host", "")
        scheme = "https" if request.secure else "http"
        if self.trusted(remote):
            forwarded_for = [p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",") if p.strip()]
            # the right-most address not itself a trusted proxy is the real client
            for candidate in reversed(forwarded_for):
                remote = candidate
                if not self.trusted(candidate):
                    break
            host = request.headers.get("X-Forwarded-Host", host).split(",")[0].strip()
            scheme = request.headers.get("X-Forwarded-Proto", scheme).split(",")[0].strip().lower() or scheme
        return Origin(client_ip=remote, host=host, scheme=scheme)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(SIGNED_PATHS):
            return await handler(request)
        origin = self.origin(request)
        name = host_name(origin.host)
        allowed = name in self.allowed_hosts or (request.path in PROBE_PATHS and name in self.probe_hosts)
        if not allowed:
            verdict = await self.refusals.refuse("http", "host not allowed", origin.client_ip)
            log.info("refused a request for host %r from %s", name[:64], origin.client_ip)
            raise http_refusal(verdict, web.HTTPForbidden, text="This host name is not one Deputy answers to. "
                               "Add it to CONSOLE_ALLOWED_HOSTS (or set PUBLIC_URL) if it is yours.")
        if request.path == "/metrics":
            await self._guard_metrics(request, origin)
        return await handler(request)

    async def _guard_metrics(self, request: web.Request, origin: Origin) -> None:
        """Refuse a scrape `metrics_refusal` finds fault with: 403 for a page in a browser, 401 for a missing or wrong token."""
        refusal = self.metrics_refusal(request, origin)
        if refusal is None:
            return
        reason, detail = refusal
        verdict = await self.refusals.refuse("http", reason, origin.client_ip)
        if verdict.noted:  # once a minute per source: a scraper with the wrong token does not flood the log
            log.warning("refused /metrics to %s: %s", origin.client_ip, detail)
        if reason == "metrics from a browser page":
            raise http_refusal(verdict, web.HTTPForbidden, text=f"/metrics refused: {detail}.")
        refused = http_refusal(verdict, web.HTTPUnauthorized, text=f"/metrics refused: {detail}.")
        refused.headers["WWW-Authenticate"] = 'Bearer realm="deputy-metrics"'
        raise refused

    def metrics_refusal(self, request: web.Request, origin: Origin) -> tuple[str, str] | None:
        """Why a request may not read /metrics, as (reason counted, what the log and the answer say), or None.

        A page another site opened in the operator's browser is refused even on loopback, and a cookie
        counts for nothing: only a scraper's header does. Loopback scrapes freely only when nothing
        forwarded the request (a tunnel or proxy on this machine connects from loopback for anyone) and
        it names a loopback host; anyone else shows METRICS_TOKEN, and without one set nobody else may."""
        if request.headers.get("Sec-Fetch-Site", "none") not in ("none", "same-origin"):
            return "metrics from a browser page", "a page on another site may not read metrics"
        if self._loopback_scrape(request, origin):
            return None
        given = request.headers.get("Authorization", "")
        if not self.metrics_token:
            return "metrics without token", "only loopback may scrape while METRICS_TOKEN is not set"
        if not given.startswith("Bearer "):
            return "metrics without token", "send `Authorization: Bearer <METRICS_TOKEN>` from beyond loopback"
        if not hmac.compare_digest(given.removeprefix("Bearer ").strip().encode(), self.metrics_token.encode()):
            return "metrics without token", "the bearer token is not METRICS_TOKEN"
        return None

    def _loopback_scrape(self, request: web.Request, origin: Origin) -> bool:
        try:
            loopback = ipaddress.ip_address(origin.client_ip).is_loopback
        except ValueError:
            return False
        forwarded = not self.trusted(request.remote) and any(h in request.headers for h in FORWARDING_HEADERS)
        return loopback and not forwarded and host_name(origin.host) in LOOPBACK_NAMES


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """No framing, no sniffing, no referrer leaks, on every response (errors included)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if response.headers.get("Content-Type", "").startswith("text/html"):
        response.headers.setdefault("Content-Security-Policy", CONSOLE_CSP)
    else:
        response.headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
