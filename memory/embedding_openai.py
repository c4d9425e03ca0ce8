"""Embeddings from any OpenAI-compatible /v1/embeddings endpoint (OpenAI, Ollama, vLLM ...)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from memory.embedder import normalize


class EmbeddingUnavailable(RuntimeError):
    """The embeddings endpoint could not be reached or answered with an error."""


class OpenAiEmbedder:
    """Batched calls through the official client; rows come back normalised, in input order."""

    def __init__(
        self, base_url: str, api_key: str | None, model: str, dim: int | None = None,
        batch_size: int = 256, timeout_s: float = 30.0, max_retries: int = 2,
    ) -> None:
        from openai import OpenAI

        self.name = f"openai:{model}"
        self.model = model
        self.batch_size = batch_size
        self._dim = dim
        self.client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s, max_retries=max_retries)

    @property
    def dim(self) -> int:
        # unknown until the endpoint has answered once, unless configured
        if self._dim is None:
            self._dim = int(self.embed(["dimension probe"]).shape[1])
        return self._dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import openai

        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = [t if t.strip() else " " for t in texts[start:start + self.batch_size]]
            try:
                response = self.client.embeddings.create(model=self.model, input=batch)
            except openai.OpenAIError as err:
                raise EmbeddingUnavailable(f"embeddings endpoint failed: {type(err).__name__}: {err}") from err
            data = sorted(response.data, key=lambda d: d.index)
            if len(data) != len(batch):
                raise EmbeddingUnavailable(f"asked for {len(batch)} embeddings, got {len(data)}")
            rows.extend(d.embedding for d in data)
        if not rows:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        out = normalize(np.asarray(rows, dtype=np.float32))
        self._dim = out.shape[1]
        return out
