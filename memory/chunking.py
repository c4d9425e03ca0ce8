"""Cutting long text into pieces the embedding model sees whole (MiniLM reads 256 tokens)."""
from __future__ import annotations

import re
from dataclasses import dataclass

# about 200 word pieces: inside the model's 256-token window with room to spare
MAX_CHARS = 900
PARAGRAPH = re.compile(r"\n\s*\n")
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
SPACE = re.compile(r"[ \t]+")


@dataclass(frozen=True)
class Chunk:
    text: str
    index: int


def _pieces(text: str, max_chars: int) -> list[str]:
    """Paragraphs, or sentences of a long paragraph, or hard cuts of a very long sentence."""
    out: list[str] = []
    for paragraph in PARAGRAPH.split(text):
        paragraph = SPACE.sub(" ", paragraph).strip()
        if not paragraph:
            continue
        if len(paragraph) <= max_chars:
            out.append(paragraph)
            continue
        for sentence in SENTENCE.split(paragraph):
            while len(sentence) > max_chars:
                cut = sentence.rfind(" ", 0, max_chars)
                cut = cut if cut > max_chars // 2 else max_chars
                out.append(sentence[:cut].strip())
                sentence = sentence[cut:].strip()
            if sentence:
                out.append(sentence)
    return out


def chunk(text: str, max_chars: int = MAX_CHARS, overlap: bool = True) -> list[Chunk]:
    """Greedy packing of paragraphs and sentences up to max_chars; with overlap, each chunk
    starts with the last piece of the one before, so a fact split across a boundary is whole once."""
    pieces = _pieces(text, max_chars)
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for piece in pieces:
        if current and size + len(piece) + 1 > max_chars:
            chunks.append("\n".join(current))
            carry = current[-1] if overlap and len(current) > 1 and len(current[-1]) + len(piece) + 1 <= max_chars else None
            current, size = ([carry], len(carry)) if carry else ([], 0)
        current.append(piece)
        size += len(piece) + 1
    if current:
        chunks.append("\n".join(current))
    return [Chunk(text=c, index=i) for i, c in enumerate(chunks)]
