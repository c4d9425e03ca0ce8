"""A backup archive: one .tar.gz of named members, and manifest.json with each member's SHA-256.

One file rather than a folder: it is written under a temporary name and linked into place only when complete (so a
backup cut short never looks whole, and an existing file is never overwritten), and it travels to another machine
as one thing."""
from __future__ import annotations

import hashlib
import json
import os
import tarfile
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

# the archive's own layout (members and manifest); the data's is the manifest's "schema"
FORMAT = 1
MANIFEST = "manifest.json"


class Refused(Exception):
    """A backup or restore that would overwrite or lose data, or an archive that is damaged or of an unknown kind;
    the message says why and what to do."""


@contextmanager
def staging(path: Path) -> Iterator[Path]:
    """A scratch folder to write the members of the archive PATH into (refused when PATH exists)."""
    if path.exists():
        raise Refused(f"{path} already exists; a backup never overwrites one: give a new name or move it away")
    if not path.parent.is_dir():
        raise Refused(f"the folder {path.parent} does not exist")
    with tempfile.TemporaryDirectory(prefix=".deputy-backup-", dir=path.parent) as folder:
        yield Path(folder)


def seal(folder: Path, path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Checksum every member in FOLDER into the manifest and write the archive at PATH; the manifest written."""
    members = sorted(p for p in folder.rglob("*") if p.is_file())
    manifest = {**manifest, "format": FORMAT, "checksums": {m.relative_to(folder).as_posix(): _sha256(m) for m in members}}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    partial = folder / "archive.tar.gz"
    with tarfile.open(partial, "w:gz") as tar:
        tar.add(folder / MANIFEST, arcname=MANIFEST)
        for member in members:
            tar.add(member, arcname=member.relative_to(folder).as_posix())
    try:
        os.link(partial, path)  # fails, rather than replaces, when PATH appeared meanwhile
    except FileExistsError:
        raise Refused(f"{path} appeared while the backup was written; it was left as it is") from None
    return manifest


def unpack(path: Path, folder: Path) -> dict[str, Any]:
    """Extract the archive PATH into FOLDER and check it: its format, and every member against its checksum."""
    if not path.is_file():
        raise Refused(f"there is no backup at {path}")
    try:
        with tarfile.open(path, "r:gz") as tar:
            tar.extractall(folder, filter="data")  # no absolute paths, links out of FOLDER or devices
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (tarfile.TarError, OSError, ValueError) as err:
        raise Refused(f"{path} is not a Deputy backup, or it is damaged ({err})") from None
    if manifest.get("format") != FORMAT:
        raise Refused(f"{path} is a backup of format {manifest.get('format')!r}; this Deputy reads format {FORMAT}")
    listed = manifest.get("checksums", {})
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {MANIFEST}
    damaged = sorted(name for name, digest in listed.items() if name not in present or _sha256(folder / name) != digest)
    if damaged or present - set(listed):
        raise Refused(f"{path} is damaged: {', '.join(damaged or sorted(present - set(listed)))} does not match its "
                      "checksum; restore from another copy")
    return manifest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
