"""Trained intent classifiers on disk: a worker that starts reads one back in a fraction of a second
instead of embedding every example phrase again (seconds with MiniLM, a minute with both models here).

An entry is a folder named by its key (what the classifier was learned from: the intents, the models,
the code) holding meta.json and one .npy per array, read memory-mapped so workers share the pages. It
is written under a temporary name and renamed into place, so a reader sees all of it or nothing; an
entry that does not read back is set aside and trained again. Entries live in the first of `folders`
that can be written (MODEL_CACHE_DIR/intents, else DATA_DIR/intents); the newest few are kept."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import sklearn

log = logging.getLogger("deputy.intents")

# entries kept per folder: the built-ins and a few versions of the operator's file
KEEP = 4
# a staging folder this old was left by a process that died while writing
STALE_STAGING_S = 3_600
# the code that turns example phrases into a classifier: a change to any of it trains again
CODE_FILES = ("classifier.py", "cascade.py", "features.py", "model.py", "store.py", "tfidf.py")


@dataclass(frozen=True)
class Saved:
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]
    path: Path


class ClassifierStore:
    def __init__(self, folders: Sequence[Path], keep: int = KEEP) -> None:
        self.folders = list(folders)
        self.keep = keep

    def load(self, key: str) -> Saved | None:
        """The entry saved under `key`, or None; an entry that does not read back is set aside."""
        for folder in self.folders:
            path = folder / key
            if not path.is_dir():
                continue
            try:
                meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
                if not isinstance(meta, dict) or meta.get("key") != key:
                    raise ValueError("meta.json names another key")
                arrays = {name: _read(path / f"{name}.npy") for name in meta["arrays"]}
            except (OSError, ValueError, KeyError, TypeError) as err:
                log.warning("the saved intent classifier in %s does not read back (%s); training it again", path, err)
                self.discard(path)
                continue
            with contextlib.suppress(OSError):
                os.utime(path)  # recently used: kept by prune
            return Saved(meta, arrays, path)
        return None

    def save(self, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path | None:
        """Write the entry into the first folder that takes it; None (logged) when none does."""
        for folder in self.folders:
            try:
                path = self._write(folder, key, arrays, meta)
            except OSError as err:
                log.warning("could not save the intent classifier in %s: %s", folder, err)
                continue
            self._prune(folder, key)
            return path
        return None

    def discard(self, path: Path) -> None:
        """Set an entry aside (one rename, so no reader sees it half removed), then remove it."""
        aside = path.with_name(f".discarded.{path.name}.{os.getpid()}.{time.monotonic_ns()}")
        try:
            os.rename(path, aside)
        except OSError:
            return  # already set aside by another process
        shutil.rmtree(aside, ignore_errors=True)

    @contextlib.contextmanager
    def building(self, key: str) -> Iterator[None]:
        """Held while `key` is trained and saved: a second process starting at the same time waits, then
        reads the first one's entry instead of training too."""
        for folder in self.folders:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                handle = (folder / f".{key}.lock").open("a")
            except OSError:
                continue
            with handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
            return
        yield  # nowhere to write: nothing to share either

    def _write(self, folder: Path, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / key
        staging = Path(tempfile.mkdtemp(prefix=f".staging.{key}.", dir=folder))
        try:
            staging.chmod(0o755)  # mkdtemp's 0700 would keep an image's other users (its runtime user) out
            for name, array in arrays.items():
                _write_synced(staging / f"{name}.npy", lambda f, a=array: np.save(f, np.ascontiguousarray(a), allow_pickle=False))
            body = json.dumps({**meta, "key": key, "arrays": sorted(arrays)}).encode()
            _write_synced(staging / "meta.json", lambda f: f.write(body))
            try:
                os.rename(staging, target)
            except OSError:
                if not target.is_dir():
                    raise
                # another process saved the same key first: its entry is as good as this one
                shutil.rmtree(staging, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    def _prune(self, folder: Path, current: str) -> None:
        entries = []
        now = time.time()
        for path in folder.iterdir():
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue
            if path.name.startswith((".staging.", ".discarded.")) and now - mtime > STALE_STAGING_S:
                shutil.rmtree(path, ignore_errors=True)
            elif path.is_dir() and not path.name.startswith(".") and path.name != current:
                entries.append((mtime, path))
        for _, path in sorted(entries, reverse=True)[self.keep - 1:]:
            self.discard(path)
            with contextlib.suppress(OSError):
                (folder / f".{path.name}.lock").unlink()


def _read(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError:
        # an empty array cannot be mapped; a damaged file fails here too
        return np.load(path, allow_pickle=False)


def _write_synced(path: Path, write: Any) -> None:
    with path.open("wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())


def classifier_key(intents_digest: str, models: Sequence[str], settings: dict[str, Any]) -> str:
    """The key of a classifier learned from the intents (their digest), the models (`model_identity` of
    each) and the code (this package's sources), with `settings` (parameters, the cascade rule)."""
    here = Path(__file__).parent
    code = hashlib.sha256(b"".join((here / name).read_bytes() for name in CODE_FILES)).hexdigest()
    payload = json.dumps({"intents": intents_digest, "models": list(models), "code": code, "settings": settings,
                          "sklearn": sklearn.__version__, "numpy": np.__version__}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def model_identity(model: object) -> str:
    """What a model's vectors depend on, cheaply: its own `fingerprint` when it has one; else its class
    and name, the size and time of each file in its folder, and the source of its class and encoder."""
    fingerprint = getattr(model, "fingerprint", None)
    if fingerprint is not None:
        return str(fingerprint() if callable(fingerprint) else fingerprint)
    inner = getattr(model, "inner", None)
    if inner is not None:  # a memo or cache in front of a model gives the model's vectors
        return model_identity(inner)
    parts = [f"{type(model).__module__}.{type(model).__qualname__}", str(getattr(model, "name", ""))]
    folder = _model_folder(model)
    if folder is not None:
        parts += [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(folder.iterdir()) if p.is_file()]
    for cls in (type(model), getattr(model, "encoder", None)):
        if isinstance(cls, type):
            parts.append(_source_digest(cls))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _model_folder(model: object) -> Path | None:
    folder = getattr(model, "model_dir", None)
    if folder is None and hasattr(model, "locate"):
        try:
            folder = model.locate()
        except Exception:  # a missing model: it has no vectors to key on either
            return None
    return Path(folder) if folder is not None and Path(folder).is_dir() else None


def _source_digest(cls: type) -> str:
    digest = hashlib.sha256()
    for base in cls.__mro__:
        try:
            digest.update(Path(inspect.getsourcefile(base) or "").read_bytes())
        except (TypeError, OSError):
            continue  # builtins
    return digest.hexdigest()[:16]
