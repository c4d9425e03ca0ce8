"""all-mpnet-base-v2: its relative-position buckets, unpacking its split archive, and the real model."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from memory.embeddings import ModelMissing
from kernel.settings import Settings
from memory.mpnet import MODEL_FILES, MPNET_NAME, MpnetEmbedder, mpnet_dir, mpnet_installed, relative_buckets


def test_relative_buckets_follow_mpnet() -> None:
    buckets = relative_buckets(300)
    assert buckets[5, 5] == 0
    assert buckets[5, 4] == 1  # key one before the query
    assert buckets[5, 6] == 17  # key one after: the other half of the buckets
    assert buckets[10, 3] == 7  # offsets under 8 are exact
    assert buckets[20, 12] == 8  # from 8 on, log-spaced
    assert buckets[250, 0] == 15 and buckets[0, 250] == 31  # far offsets share the last bucket of each half
    assert buckets.min() == 0 and buckets.max() == 31


def _split_archive(tmp_path: Path, files: dict[str, bytes], pieces: int = 3) -> list[Path]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(f"all-mpnet-base-v2/{name}", data)
    raw = buffer.getvalue()
    size = len(raw) // pieces + 1
    parts = []
    for index in range(pieces):
        part = tmp_path / f"all-mpnet-base-v2.zip.{index + 1:03d}"
        part.write_bytes(raw[index * size:(index + 1) * size])
        parts.append(part)
    return parts


def test_split_archive_is_joined_and_unpacked_once(tmp_path: Path) -> None:
    files = {name: f"{name} ".encode() * 5000 for name in MODEL_FILES} | {"README.md": b"ignored"}
    parts = _split_archive(tmp_path, files)
    folder = mpnet_dir(tmp_path / "cache", parts)
    assert sorted(p.name for p in folder.iterdir()) == sorted(MODEL_FILES)
    assert (folder / "config.json").read_bytes() == files["config.json"]
    # unpacked already: the pieces are not read again
    for part in parts:
        part.unlink()
    assert mpnet_dir(tmp_path / "cache", []) == folder
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [".all-mpnet-base-v2.lock", "all-mpnet-base-v2"]


def test_corrupt_piece_is_refused_and_leaves_nothing_half_unpacked(tmp_path: Path) -> None:
    files = {name: bytes(range(256)) * 400 for name in MODEL_FILES}
    parts = _split_archive(tmp_path, files)
    data = bytearray(parts[1].read_bytes())
    data[len(data) // 2] ^= 0xFF
    parts[1].write_bytes(bytes(data))
    with pytest.raises(zipfile.BadZipFile):
        mpnet_dir(tmp_path / "cache", parts)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [".all-mpnet-base-v2.lock"]


def test_damage_inside_a_compressed_stream_is_refused_as_a_damaged_archive(tmp_path: Path) -> None:
    files = {name: bytes(range(256)) * 400 for name in MODEL_FILES}
    parts = _split_archive(tmp_path, files, pieces=1)
    raw = bytearray(parts[0].read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as archive:
        info = archive.getinfo("all-mpnet-base-v2/model.safetensors")
    # the member's compressed data starts after its local header (30 bytes, its name, its extra field)
    name_length = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little")
    extra_length = int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    raw[info.header_offset + 30 + name_length + extra_length] = 0xFF  # a deflate block of the reserved type
    parts[0].write_bytes(bytes(raw))
    with pytest.raises(zipfile.BadZipFile, match="model.safetensors is damaged"):
        mpnet_dir(tmp_path / "cache", parts)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [".all-mpnet-base-v2.lock"]


def test_archive_without_the_weights_is_a_clear_error(tmp_path: Path) -> None:
    parts = _split_archive(tmp_path, {"config.json": b"{}", "tokenizer.json": b"{}"})
    with pytest.raises(ModelMissing, match="model.safetensors"):
        mpnet_dir(tmp_path / "cache", parts)


@pytest.fixture(scope="module")
def mpnet() -> MpnetEmbedder:
    # the files `deputy prepare` made (scripts/test runs it), so no test run unpacks 440 MB again
    cache = Settings().intent.model_cache_dir
    if not mpnet_installed() and not (cache / MPNET_NAME).is_dir():
        pytest.skip("all-mpnet-base-v2 is not installed (scripts/test installs it)")
    return MpnetEmbedder(cache)


def test_real_model_on_onnxruntime_agrees_with_the_numpy_reference(mpnet: MpnetEmbedder) -> None:
    # the numpy encoder's fp32 vectors (one text past 256 tokens, one with accents and CJK); the graph's
    # int8 activations, one scale per matrix, keep 0.984 at worst here (0.98 on the operator dev
    # messages' intent features): MPNet only feeds the intent classifier, which is trained on the same
    # graph's vectors (docs/memory.md), so it is held to 0.98 where memory's MiniLM is held to 0.99
    ref = json.loads((Path(__file__).parent / "fixtures" / "mpnet_reference.json").read_text())
    got = mpnet.embed(ref["texts"])
    want = np.asarray(ref["vectors"], dtype=np.float32)
    assert ((got * want).sum(axis=1) / np.linalg.norm(want, axis=1)).min() >= 0.98


def test_real_model_gives_unit_vectors_that_know_paraphrases(mpnet: MpnetEmbedder) -> None:
    texts = ["how do i reset my password", "i forgot my password", "what's the weather like tomorrow", "will it rain tomorrow"]
    vectors = mpnet.embed(texts)
    assert vectors.shape == (4, 768)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > 0.6 and sims[2, 3] > 0.6
    assert max(sims[0, 2], sims[0, 3], sims[1, 2], sims[1, 3]) < 0.3


def test_padding_does_not_change_vectors(mpnet: MpnetEmbedder) -> None:
    # a text's vector is the same alone and among others: the embedder runs one text per pass, as the
    # graph's int8 activation scales are per call (a batch would share them, padding included)
    texts = ["wake me up at seven", "play the latest episode of my favourite science podcast from the beginning please"]
    together = mpnet.embed(texts)
    alone = np.vstack([mpnet.embed([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-5)
    layers = mpnet.embed_layers(texts, (-4, -3, -2, -1))
    assert layers.shape == (2, 4 * 768)
    assert np.allclose(np.linalg.norm(layers, axis=1), 1.0, atol=1e-5)
