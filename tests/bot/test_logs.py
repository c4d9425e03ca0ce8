import io
import logging

import pytest

from bot.logs import QUIET, DeputyHandler, RedactingFilter, configure_logging
from memory.redaction import Redactor

TOKEN = "987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


@pytest.fixture
def root():  # type: ignore[no-untyped-def]
    logger = logging.getLogger()
    level, levels = logger.level, {name: logging.getLogger(name).level for name in QUIET}
    yield logger
    for handler in [h for h in logger.handlers if isinstance(h, DeputyHandler)]:
        logger.removeHandler(handler)
    logger.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


def record(msg: object, *args: object, exc_info: object = None) -> logging.LogRecord:
    return logging.LogRecord("httpx", logging.INFO, __file__, 1, msg, args, exc_info)  # type: ignore[arg-type]


def test_the_message_is_formatted_then_masked_and_the_args_dropped():
    masked = record("HTTP Request: %s %s", "POST", f"https://api.telegram.org/bot{TOKEN}/getUpdates")
    assert RedactingFilter(Redactor(["tg-hook-secret"])).filter(masked)
    assert masked.msg == "HTTP Request: POST https://api.telegram.org/bot***/getUpdates" and masked.args is None
    odd = record("retrying %d", "tg-hook-secret")  # a format string that does not fit its args
    RedactingFilter(Redactor(["tg-hook-secret"])).filter(odd)
    assert "tg-hook-secret" not in odd.getMessage()


def test_a_traceback_is_masked_too(root):
    written = io.StringIO()
    configure_logging(["tg-hook-secret"], stream=written)
    try:
        raise RuntimeError(f"setWebhook to https://api.telegram.org/bot{TOKEN}/setWebhook with tg-hook-secret failed")
    except RuntimeError:
        logging.getLogger("deputy.telegram").exception("could not set the webhook")
    assert "could not set the webhook" in written.getvalue() and "/bot***/setWebhook with *** failed" in written.getvalue()
    assert TOKEN not in written.getvalue() and "tg-hook-secret" not in written.getvalue()


def test_request_printing_libraries_are_quiet_and_a_second_setup_replaces_the_first(root):
    first, second = io.StringIO(), io.StringIO()
    configure_logging([], stream=first)
    configure_logging([], verbose=True, stream=second)
    logging.getLogger("httpx").info("HTTP Request: POST https://slack.com/api/chat.postMessage")
    logging.getLogger("deputy.gateway").debug("accepted")
    assert [h.stream for h in root.handlers if isinstance(h, DeputyHandler)] == [second]
    assert first.getvalue() == "" and "chat.postMessage" not in second.getvalue() and "deputy.gateway DEBUG accepted" in second.getvalue()
