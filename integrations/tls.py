"""TLS client contexts for the connectors (SMTP, IMAP)."""
from __future__ import annotations

import functools
import ssl


@functools.lru_cache(maxsize=8)
def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The system's trust store, or `ca_file` instead. Cached: loading a CA store costs tens of
    milliseconds, and one context is safe to share between connections and threads."""
    return ssl.create_default_context(cafile=ca_file)
