"""The embedded store's keyword side: FTS5 bm25 over the items' text, with a bounded cost.

FTS5 scores every row that matches before it can sort and cut, so a question made of words found
in a fifth of the notes costs tens of milliseconds at 100k items. When the query's words together
match more rows than `budget`, only the rarest of them (by document frequency, from fts5vocab)
decide which rows are candidates, and every word still adds to those rows' bm25 score."""
from __future__ import annotations

import re
from typing import Any

from kernel.text import STOPWORDS
from memory.sql_filter import conditions
from memory.store import SearchFilter

WORD = re.compile(r"\w+", re.UNICODE)
# the FTS5 table's own tokenizer settings: document frequencies are looked up by its tokens
TOKENIZER = ("porter", ["unicode61", "remove_diacritics", "2"])
Ranking = list[tuple[int, float]]


def query_words(text: str) -> list[str]:
    words = [w.lower() for w in WORD.findall(text)]
    kept = [w for w in words if w not in STOPWORDS] or words
    return list(dict.fromkeys(kept))[:32]


def any_of(words: list[str]) -> str:
    """An FTS5 query matching any of `words` (each quoted: no query syntax leaks in)."""
    return " OR ".join(f'"{w}"' for w in words)


def keyword_query(text: str) -> str:
    """An FTS5 query matching any meaningful word of `text`."""
    return any_of(query_words(text))


def bounded_query(words: list[str], frequency: dict[str, int], budget: int) -> str:
    """`any_of(words)`, unless together they match more than `budget` rows: then rows must hold one
    of the rarest words (as many as fit the budget, at least one), and all words still score."""
    found = sorted((w for w in words if frequency.get(w, 0) > 0), key=lambda w: (frequency[w], words.index(w)))
    if sum(frequency[w] for w in found) <= budget:
        return any_of(words)
    required: list[str] = []
    spent = 0
    for word in found:
        if required and spent + frequency[word] > budget:
            break
        required.append(word)
        spent += frequency[word]
    rest = [w for w in found if w not in required]
    if not rest:
        return any_of(required)
    # the required words appear in both halves, so they count twice in bm25: they are the rare ones
    return f"({any_of(required)}) AND ({any_of(required + rest)})"


class KeywordSearch:
    """bm25-ranked FTS5 search on its own connection (a `threading` caller may run it beside the
    vector side: apsw releases the GIL while SQLite works)."""

    def __init__(self, db: Any, budget: int = 6_000) -> None:
        import apsw

        self.db = db
        self.budget = budget
        self._tokenize = db.fts5_tokenizer(*TOKENIZER)
        self._flags = apsw.FTS5_TOKENIZE_QUERY
        # a temp table: reading document frequencies changes nothing in the file
        db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.items_fts_terms USING fts5vocab(main, items_fts, row)")

    def frequencies(self, words: list[str]) -> dict[str, int]:
        """Rows holding each word (a word FTS5 splits in several tokens counts as its rarest token)."""
        out: dict[str, int] = {}
        for word in words:
            tokens = self._tokenize(word.encode(), self._flags, None, include_offsets=False, include_colocated=False)
            counts = [self._doc_count(str(t)) for t in tokens]
            out[word] = min(counts) if counts else 0
        return out

    def _doc_count(self, token: str) -> int:
        row = self.db.execute("SELECT doc FROM temp.items_fts_terms WHERE term = ?", (token,)).fetchone()
        return int(row[0]) if row else 0

    def rows(self, workspace: str, text: str, k: int, where: SearchFilter | None, only_workspace: bool) -> Ranking:
        """The `k` best rows for `text` by bm25 (higher is better). `only_workspace`: the file holds
        no other workspace, so rows need no join to items unless a filter asks for one."""
        words = query_words(text)
        if not words:
            return []
        match = bounded_query(words, self.frequencies(words), self.budget)
        cond, args = conditions(where, "i.")
        if only_workspace and not cond:
            sql = "SELECT rowid, bm25(items_fts) AS rank FROM items_fts WHERE items_fts MATCH ? ORDER BY rank LIMIT ?"
            params: list[Any] = [match, k]
        else:
            sql = (
                "SELECT f.rowid, bm25(items_fts) AS rank FROM items_fts f JOIN items i ON i.rowid = f.rowid "
                f"WHERE items_fts MATCH ? AND i.workspace = ?{cond} ORDER BY rank LIMIT ?"
            )
            params = [match, workspace, *args, k]
        # bm25() is lower for better matches
        return [(r, -score) for r, score in self.db.execute(sql, params)]
