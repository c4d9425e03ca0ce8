"""Reading the kinds of file Deputy ingests (txt, md, pdf, eml, csv) from their bytes, within limits."""
from __future__ import annotations

import csv
import email
import email.policy
import email.utils
import html
import io
import re
import time
from dataclasses import dataclass, field
from typing import Callable

SUFFIXES = (".txt", ".md", ".markdown", ".pdf", ".eml", ".csv")
TAG = re.compile(r"<[^>]+>")
CSV_ROWS_PER_CHUNK = 5


class IngestError(ValueError):
    """A file that cannot be ingested; the message says why and what to do."""


@dataclass(frozen=True)
class Limits:
    """How much of a file ingestion reads: files past max_file_bytes are skipped unread, a PDF is read
    up to max_pdf_pages pages and for about pdf_timeout_s seconds (checked between pages)."""

    max_file_bytes: int = 20 * 1024 * 1024
    max_pdf_pages: int = 500
    pdf_timeout_s: float = 60.0


@dataclass(frozen=True)
class Section:
    """A readable part of a file (a pdf page, an email body, a group of csv rows) with its details."""

    text: str
    meta: dict[str, str] = field(default_factory=dict)
    created_at: float | None = None


@dataclass(frozen=True)
class Reading:
    sections: list[Section]
    # what of the file was left out and why (a PDF past its page cap or time budget); empty when all was read
    left_out: str = ""


def _text(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise IngestError(f"{name} is not UTF-8 text ({err.reason} at byte {err.start}); convert it with `iconv -t utf-8`") from err


def read_text(name: str, data: bytes, limits: Limits) -> Reading:
    return Reading([Section(_text(name, data))])


def read_pdf(name: str, data: bytes, limits: Limits, clock: Callable[[], float] = time.monotonic) -> Reading:
    """The text of each page, up to the page cap; extraction stops once the time budget is spent."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    started = clock()
    pages: list[str] = []
    try:
        reader = PdfReader(io.BytesIO(data))
        total = len(reader.pages)
        for number in range(min(total, limits.max_pdf_pages)):
            if pages and clock() - started > limits.pdf_timeout_s:
                break
            pages.append(reader.pages[number].extract_text() or "")
    except (PdfReadError, ValueError, KeyError, OSError) as err:
        raise IngestError(f"{name} is not a readable PDF ({err}); is it damaged or encrypted?") from err
    left_out = _pdf_left_out(len(pages), total, limits)
    if not any(p.strip() for p in pages):
        if left_out:
            raise IngestError(f"{name}: no text in the pages read ({left_out})")
        raise IngestError(f"{name} has no text layer (a scanned PDF?); run OCR on it first")
    return Reading([Section(text, meta={"page": str(n)}) for n, text in enumerate(pages, start=1) if text.strip()], left_out)


def _pdf_left_out(read: int, total: int, limits: Limits) -> str:
    if read == total:
        return ""
    if read < min(total, limits.max_pdf_pages):
        return (f"timed out: stopped after {limits.pdf_timeout_s:g} s at page {read} of {total} "
                "(INGEST_PDF_TIMEOUT_S)")
    return f"truncated: read the first {read} of {total} pages (INGEST_MAX_PDF_PAGES)"


def read_eml(name: str, data: bytes, limits: Limits) -> Reading:
    message = email.message_from_bytes(data, policy=email.policy.default)
    if not message.keys():
        raise IngestError(f"{name} has no email headers; is it really an .eml file?")
    body_part = message.get_body(preferencelist=("plain", "html"))  # type: ignore[attr-defined]
    body = ""
    if body_part is not None:
        try:
            body = body_part.get_content()
        except (LookupError, UnicodeError) as err:
            raise IngestError(f"{name}: the body's character set is unreadable ({err})") from err
        if body_part.get_content_type() == "text/html":
            body = html.unescape(TAG.sub(" ", body))
    subject, sender = str(message.get("subject", "")), str(message.get("from", ""))
    when = None
    if message.get("date"):
        try:
            when = email.utils.parsedate_to_datetime(str(message["date"])).timestamp()
        except (TypeError, ValueError):
            when = None
    text = f"Email from {sender}\nSubject: {subject}\n\n{body}".strip()
    return Reading([Section(text, meta={"from": sender, "subject": subject}, created_at=when)])


def read_csv(name: str, data: bytes, limits: Limits) -> Reading:
    try:
        rows = list(csv.DictReader(io.StringIO(_text(name, data))))
    except csv.Error as err:
        raise IngestError(f"{name} is not valid CSV ({err})") from err
    if not rows:
        raise IngestError(f"{name} has a header but no rows")
    sections = []
    for start in range(0, len(rows), CSV_ROWS_PER_CHUNK):
        group = rows[start:start + CSV_ROWS_PER_CHUNK]
        lines = ["; ".join(f"{k}: {v}" for k, v in row.items() if k and v) for row in group]
        sections.append(Section("\n".join(lines), meta={"rows": f"{start + 2}-{start + 1 + len(group)}"}))
    return Reading(sections)


READERS: dict[str, Callable[[str, bytes, Limits], Reading]] = {
    ".txt": read_text, ".md": read_text, ".markdown": read_text, ".pdf": read_pdf, ".eml": read_eml, ".csv": read_csv,
}
