"""Deputy's logging, set up once per process: one handler on the root logger, whose filter masks
every configured secret and anything shaped like a credential, and the libraries that print
request URLs and headers quieted to warnings."""
from __future__ import annotations

import logging
from typing import Iterable, TextIO

from memory.redaction import Redactor

FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"
# they log every request's URL (the Bot API's carries the bot token), headers or parameters
QUIET = (
    "httpx", "httpcore", "h2", "hpack", "urllib3", "aiohttp.client", "aiohttp.access", "websockets",
    "telegram", "slack_sdk", "slack_bolt", "openai", "weaviate", "rq",
)


class RedactingFilter(logging.Filter):
    """Formats a record's message, masks it, then drops the args: no handler sees them unmasked."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor
        self.formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor.text(_message(record))
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatter.formatException(record.exc_info)
        # formatters print the cached exc_text rather than format exc_info again
        if record.exc_text:
            record.exc_text = self.redactor.text(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.text(record.stack_info)
        return True


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # a format string that does not fit its args is still logged, masked
        return f"{record.msg} {record.args!r}"


class DeputyHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure_logging` installs (a second call replaces it)."""


def configure_logging(secrets: Iterable[str], verbose: bool = False, stream: TextIO | None = None) -> DeputyHandler:
    """Log to `stream` (stderr) with `secrets` masked; DEBUG when verbose, INFO otherwise."""
    handler = DeputyHandler(stream)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactingFilter(Redactor(secrets, assignments=True)))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, DeputyHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
