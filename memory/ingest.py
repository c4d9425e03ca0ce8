"""Putting things into semantic memory: notes, conversation turns and files (txt, md, pdf, eml, csv).

Every piece is identified by a hash of its project and content, so the same text is stored once
however often it is ingested."""
from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Sequence

from memory.chunking import chunk
from memory.folder import Skipped, read_inside, unsupported
from memory.readers import READERS, IngestError, Limits, Reading, Section
from memory.store import MemoryItem, MemoryStore, Trust

__all__ = ["FileResult", "IngestError", "Ingestor", "Limits", "content_id", "source_for"]

Outcome = Literal["ingested", "skipped", "failed"]


@dataclass
class FileResult:
    """What became of one file: ingested (`reason` says what was left out, if anything), skipped
    unread (`reason` says why: a link out of the folder, too large, unsupported) or failed (unreadable)."""

    path: str
    outcome: Outcome = "ingested"
    reason: str = ""
    chunks: int = 0
    # chunks already in memory with the same content
    duplicates: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        if self.outcome != "ingested":
            return f"{self.outcome} {self.path}: {self.reason}"
        known = f", {self.duplicates} already known" if self.duplicates else ""
        return f"ingested {self.path}: {self.chunks} new chunk(s){known}" + (f"; {self.reason}" if self.reason else "")


def content_id(project: str, text: str) -> str:
    return hashlib.sha256(f"{project}\n{text.strip()}".encode()).hexdigest()[:24]


def source_for(path: Path) -> str:
    return f"file:{path.resolve()}"


class Ingestor:
    """Adds notes, conversation turns and files of one workspace to a MemoryStore."""

    def __init__(self, store: MemoryStore, workspace: str, clock: Callable[[], float] = time.time,
                 limits: Limits = Limits()) -> None:
        self.store = store
        self.workspace = workspace
        self.clock = clock
        self.limits = limits

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
             on_chunks: Callable[[int], None] | None = None, root: Path | None = None) -> FileResult:
        """Ingest one file, which must lie inside `root` (default: its own folder) without passing
        through a link; one that is skipped or cannot be read says why in the result, nothing raised."""
        result = FileResult(path=str(path))
        try:
            reading, modified = self._read(path, root or path.parent)
        except Skipped as err:
            result.outcome, result.reason = "skipped", str(err)
            return result
        except IngestError as err:
            result.outcome, result.reason = "failed", str(err)
            return result
        except OSError as err:
            result.outcome, result.reason = "failed", f"{path.name}: cannot be read ({err.strerror or err})"
            return result
        items = list(self._items(path, reading.sections, project, trust, author, modified))
        if not items:
            result.outcome, result.reason = "failed", f"{path.name} has no text to remember"
            return result
        result.reason = reading.left_out
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

    def _read(self, path: Path, root: Path) -> tuple[Reading, float]:
        reader = READERS.get(path.suffix.lower())
        if reader is None:
            raise Skipped(unsupported())
        data, modified = read_inside(root, path, self.limits.max_file_bytes)
        return reader(path.name, data, self.limits), modified

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
