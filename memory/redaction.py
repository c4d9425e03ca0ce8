"""Masking secrets: the configured secret values, and text shaped like a credential.

The event log and the log handlers share it; it sits at the bottom of the package so both can."""
from __future__ import annotations

import json
import re
from typing import Any, Iterable
from urllib.parse import quote

from pydantic import BaseModel, SecretBytes, SecretStr

MASK = "***"
# a shorter configured value would mask every word it happens to occur in
MIN_SECRET_LEN = 4
Pattern = tuple[re.Pattern[str], str]

# credentials recognisable by their shape, whoever configured them
CREDENTIALS: tuple[Pattern, ...] = (
    # the Bot API puts the bot token in the path of every call: .../bot123456:AAE.../sendMessage
    (re.compile(r"/bot\d+:[A-Za-z0-9_-]+"), "/bot" + MASK),
    (re.compile(r"\b\d{6,12}:[A-Za-z0-9_-]{30,}"), MASK),
    (re.compile(r"\bxox[abeprs]-[A-Za-z0-9-]+"), MASK),
    (re.compile(r"\bxapp-[A-Za-z0-9-]+"), MASK),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), MASK),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), MASK),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), MASK),
    # a JSON web token: three base64url parts, the first an encoded '{"'
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), MASK),
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE), r"\1 " + MASK),
    # the password of a URL's user info: redis://:pw@host, https://user:pw@host
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@", re.IGNORECASE), r"\1" + MASK + "@"),
)
# `token=...`, `'secret_token': '...'`, `"password": "..."`: what libraries print of a request.
# Only for logs; in events a user's own words (inbound text) stay as they were written.
ASSIGNMENTS: tuple[Pattern, ...] = (
    (re.compile(r"""((?:\b|_)(?:token|secret|password|passwd|api[_-]?key)["']?\s*[:=]\s*["']?)"""
                r"""(?!\*\*\*)[^\s"'&,;)}\]]+""", re.IGNORECASE), r"\1" + MASK),
)
# event fields whose value is a credential whatever it looks like; `prompt_tokens` is a count, not one
SECRET_KEY = re.compile(r"(^|[_.-])(token|secret|password|passwd|api[_-]?key|private_key|authorization|cookie)$", re.IGNORECASE)


class Redactor:
    """Replaces each configured secret, and anything shaped like a credential, with `***`."""

    def __init__(self, secrets: Iterable[str] = (), assignments: bool = False) -> None:
        kept = {s for s in secrets if len(s) >= MIN_SECRET_LEN}
        # a secret in a URL's query arrives percent-encoded
        kept |= {quote(s, safe="") for s in kept}
        ordered = sorted(kept, key=len, reverse=True)  # a secret containing another goes whole
        self._secrets = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self._patterns = CREDENTIALS + (ASSIGNMENTS if assignments else ())

    def text(self, text: str) -> str:
        if self._secrets is not None:
            text = self._secrets.sub(MASK, text)
        for pattern, replacement in self._patterns:
            text = pattern.sub(replacement, text)
        return text

    def value(self, value: Any) -> Any:
        """`value` with secrets masked at any depth; a secret-named key's value is masked whole. Numbers stay as they
        are (a count is never a credential); any other object is masked as its text."""
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, dict):
            return {self.text(str(k)): MASK if SECRET_KEY.search(str(k)) else self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        return self.text(value if isinstance(value, str) else str(value))

    def json(self, value: Any) -> str:
        """`value` masked, as JSON: secrets are looked for in keys and text, never in numbers, so a configured
        secret that happens to be digits cannot hide `prompt_tokens`."""
        return json.dumps(self.value(value), ensure_ascii=False)


def secret_values(value: Any) -> list[str]:
    """Every SecretStr inside a settings object, its nested models and its dicts, unwrapped."""
    if isinstance(value, (SecretStr, SecretBytes)):
        raw = value.get_secret_value()
        return [raw.decode(errors="replace") if isinstance(raw, bytes) else raw]
    if isinstance(value, BaseModel):
        return [s for name in type(value).model_fields for s in secret_values(getattr(value, name))]
    if isinstance(value, dict):
        return [s for v in value.values() for s in secret_values(v)]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [s for v in value for s in secret_values(v)]
    return []
