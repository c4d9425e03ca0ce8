"""Putting things into semantic memory: notes, conversation turns and files (txt, md, pdf, eml, csv).

Every piece is identified by a hash of its project and content, so the same text is stored once
however often it is ingested."""
from __future__ import annotations

import csv
import email
import email.policy
import email.utils
import hashlib
import html
import io
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from memory.chunking import chunk
from memory.store import MemoryItem, MemoryStore, Trust

SUFFIXES = (".txt", ".md", ".markdown", ".pdf", ".eml", ".csv")
TAG = re.compile(r"<[^>]+>")
CSV_ROWS_PER_CHUNK = 5


class IngestError(ValueError):
    """A file that cannot be ingested; the message says why and what to do."""


@dataclass(frozen=True)
class Section:
    """A readable part of a file (a pdf page, an email body, a group of csv rows) with its details."""

    text: str
    meta: dict[str, str] = field(default_factory=dict)
    created_at: float | None = None


@dataclass
class FileResult:
    path: str
    chunks: int = 0
    # chunks already in memory with the same content
    duplicates: int = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def content_id(project: str, text: str) -> str:
    return hashlib.sha256(f"{project}\n{text.strip()}".encode()).hexdigest()[:24]


def source_for(path: Path) -> str:
    return f"file:{path.resolve()}"


# --- readers, one per kind of file

def _read_text(path: Path) -> list[Section]:
    try:
        return [Section(path.read_text(encoding="utf-8-sig"))]
    except UnicodeDecodeError as err:
        raise IngestError(f"{path.name} is not UTF-8 text ({err.reason} at byte {err.start}); convert it with `iconv -t utf-8`") from err


def _read_pdf(path: Path) -> list[Section]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, OSError) as err:
        raise IngestError(f"{path.name} is not a readable PDF ({err}); is it damaged or encrypted?") from err
    if not any(p.strip() for p in pages):
        raise IngestError(f"{path.name} has no text layer (a scanned PDF?); run OCR on it first")
    return [Section(text, meta={"page": str(n)}) for n, text in enumerate(pages, start=1) if text.strip()]


def _read_eml(path: Path) -> list[Section]:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    if not message.keys():
        raise IngestError(f"{path.name} has no email headers; is it really an .eml file?")
    body_part = message.get_body(preferencelist=("plain", "html"))  # type: ignore[attr-defined]
    body = ""
    if body_part is not None:
        try:
            body = body_part.get_content()
        except (LookupError, UnicodeError) as err:
            raise IngestError(f"{path.name}: the body's character set is unreadable ({err})") from err
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
    return [Section(text, meta={"from": sender, "subject": subject}, created_at=when)]


def _read_csv(path: Path) -> list[Section]:
    raw = _read_text(path)[0].text
    try:
        rows = list(csv.DictReader(io.StringIO(raw)))
    except csv.Error as err:
        raise IngestError(f"{path.name} is not valid CSV ({err})") from err
    if not rows:
        raise IngestError(f"{path.name} has a header but no rows")
    sections = []
    for start in range(0, len(rows), CSV_ROWS_PER_CHUNK):
        group = rows[start:start + CSV_ROWS_PER_CHUNK]
        lines = ["; ".join(f"{k}: {v}" for k, v in row.items() if k and v) for row in group]
        sections.append(Section("\n".join(lines), meta={"rows": f"{start + 2}-{start + 1 + len(group)}"}))
    return sections


READERS: dict[str, Callable[[Path], list[Section]]] = {
    ".txt": _read_text, ".md": _read_text, ".markdown": _read_text, ".pdf": _read_pdf, ".eml": _read_eml, ".csv": _read_csv,
}


def files_under(path: Path) -> list[Path]:
    """The ingestible files at `path` (a file, or a folder walked recursively), in a stable order."""
    if path.is_file():
        return [path]
    if not path.exists():
        raise IngestError(f"{path} does not exist")
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith("."))


class Ingestor:
    """Adds notes, conversation turns and files of one workspace to a MemoryStore."""

    def __init__(self, store: MemoryStore, workspace: str, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.workspace = workspace
        self.clock = clock

    def note(self, text: str, project: str = "inbox", author: str = "", source: str = "remember",
             trust: Trust = "operator", meta: dict[str, str] | None = None) -> MemoryItem:
        text = text.strip()
        if not text:
            raise IngestError("nothing to remember")
        item = MemoryItem(id=content_id(project, text), workspace=self.workspace, text=text, project=project, source=source,
                          author=author, created_at=self.clock(), trust=trust, meta=meta or {})
        self.store.add([item])
        return item

    def file(self, path: Path, project: str = "inbox", trust: Trust = "untrusted", author: str = "",
             on_chunks: Callable[[int], None] | None = None) -> FileResult:
        """Ingest one file; a file that cannot be read comes back with `error` set, nothing raised."""
        result = FileResult(path=str(path))
        reader = READERS.get(path.suffix.lower())
        if reader is None:
            result.error = f"{path.name}: unsupported kind of file (Deputy reads {', '.join(SUFFIXES)})"
            return result
        try:
            sections = reader(path)
            modified = path.stat().st_mtime
        except IngestError as err:
            result.error = str(err)
            return result
        except OSError as err:
            result.error = f"{path.name}: cannot be read ({err.strerror or err})"
            return result
        items = list(self._items(path, sections, project, trust, author, modified))
        if not items:
            result.error = f"{path.name} has no text to remember"
            return result
        known = self._known([i.id for i in items])
        result.duplicates = len(known)
        fresh = [i for i in items if i.id not in known]
        for start in range(0, len(fresh), 64):
            batch = fresh[start:start + 64]
            self.store.add(batch)
            if on_chunks:
                on_chunks(len(batch))
        result.chunks = len(fresh)
        return result

    def _items(self, path: Path, sections: Sequence[Section], project: str, trust: Trust, author: str,
               modified: float) -> Iterable[MemoryItem]:
        seen: set[str] = set()
        for section in sections:
            for piece in chunk(section.text):
                item_id = content_id(project, piece.text)
                if item_id in seen:
                    continue
                seen.add(item_id)
                yield MemoryItem(
                    id=item_id, workspace=self.workspace, text=piece.text, project=project, source=source_for(path),
                    author=author, created_at=section.created_at or modified, trust=trust,
                    meta={**section.meta, "file": path.name, "chunk": str(piece.index)},
                )

    def _known(self, ids: list[str]) -> set[str]:
        # stores that can look items up by id skip re-adding what they hold (the protocol has no get)
        get = getattr(self.store, "get", None)
        if get is None:
            return set()
        return {item.id for item in get(self.workspace, ids)}
