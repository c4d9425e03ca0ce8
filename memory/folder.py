"""The folder given to ingest: the files in it, and opening one without leaving the folder.

Every check is made on real paths (symlinks and `..` resolved), because a folder of documents
from elsewhere may hold links to `~/.ssh` or `/etc`. Links to folders are never followed (a link
inside the folder points at files that are walked where they are), so link loops cannot occur."""
from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from memory.readers import SUFFIXES, IngestError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
# a pipe put where a file was must not block the open
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


class Skipped(Exception):
    """A file that is deliberately not read; the message says why."""


@dataclass(frozen=True)
class Listing:
    # the real folder every file must stay inside (the file's own folder when one file was given)
    root: Path
    # real paths, each once, in a stable order
    files: list[Path] = field(default_factory=list)
    # (path as found, why it is not read)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def too_large(size: int, max_bytes: int) -> str:
    return f"too large: {size / 2**20:.3g} MB, over the {max_bytes / 2**20:.3g} MB limit (INGEST_MAX_FILE_MB)"


def unsupported() -> str:
    return f"unsupported kind of file (Deputy reads {' '.join(SUFFIXES)})"


def list_files(path: Path, max_bytes: int) -> Listing:
    """The files to ingest at `path` (a file, or a folder walked recursively, hidden names left out)
    and the ones skipped with their reason: links leading outside the folder, files too large,
    unsupported kinds."""
    if not path.exists() and not path.is_symlink():
        raise IngestError(f"{path} does not exist")
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError) as err:
        raise IngestError(f"{path} cannot be opened ({err})") from err
    if not real.is_dir():
        # a file named on the command line is read wherever its links lead: the operator chose it
        listing = Listing(real.parent)
        _admit(listing, path, real, max_bytes)
        return listing
    listing = Listing(real)
    seen: set[Path] = set()
    for found in _walk(real, listing):
        target = _target(found, real, listing)
        if target is not None and target not in seen:
            seen.add(target)
            _admit(listing, found, target, max_bytes)
    listing.files.sort()
    listing.skipped.sort()
    return listing


def _walk(root: Path, listing: Listing) -> Iterator[Path]:
    """Every non-folder entry under root, without entering links or hidden folders."""
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as err:
            listing.skipped.append((folder, f"folder cannot be listed ({err.strerror or err})"))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                folders.append(Path(entry.path))
            else:
                yield Path(entry.path)


def _target(found: Path, root: Path, listing: Listing) -> Path | None:
    """The real file behind `found`, or None (with a reason in listing.skipped) when it is not read."""
    if not found.is_symlink():
        return found
    try:
        target = found.resolve(strict=True)
    except RuntimeError:
        listing.skipped.append((found, "a symlink loop"))
        return None
    except OSError as err:
        reason = "a symlink loop" if err.errno == errno.ELOOP else f"a symlink to nothing ({os.readlink(found)})"
        listing.skipped.append((found, reason))
        return None
    if not target.is_relative_to(root):
        listing.skipped.append((found, f"a symlink to {target}, outside the folder {root}; not followed"))
        return None
    # a link to a folder inside: its files are walked where they are
    return None if target.is_dir() else target


def _admit(listing: Listing, found: Path, real: Path, max_bytes: int) -> None:
    if real.suffix.lower() not in SUFFIXES:
        listing.skipped.append((found, unsupported()))
        return
    try:
        info = real.stat()
    except OSError as err:
        listing.skipped.append((found, f"cannot be read ({err.strerror or err})"))
        return
    if not stat.S_ISREG(info.st_mode):
        listing.skipped.append((found, "not a regular file (a pipe, socket or device)"))
    elif info.st_size > max_bytes:
        listing.skipped.append((found, too_large(info.st_size, max_bytes)))
    else:
        listing.files.append(real)


def read_inside(root: Path, path: Path, max_bytes: int) -> tuple[bytes, float]:
    """The bytes and modification time of `path`, opened one folder at a time from `root` without
    following any link below it: a file swapped for a link after the folder was listed is refused.
    Raises Skipped (outside the folder, a link, too large) or OSError (cannot be read)."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        raise Skipped(f"outside the folder {root}; not read") from None
    if not parts or any(p in ("..", ".") for p in parts):
        raise Skipped(f"not a file inside the folder {root}; not read")
    with os.fdopen(_open_below(root, parts), "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Skipped("not a regular file (a pipe, socket or device)")
        if info.st_size > max_bytes:
            raise Skipped(too_large(info.st_size, max_bytes))
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew since fstat
        raise Skipped(too_large(len(data), max_bytes))
    return data, info.st_mtime


def _open_below(root: Path, parts: tuple[str, ...]) -> int:
    if os.open not in os.supports_dir_fd:  # no openat here: check the resolved path instead
        if not (root / Path(*parts)).resolve().is_relative_to(root.resolve()):
            raise Skipped(f"leads outside the folder {root}; not read")
        return os.open(root / Path(*parts), os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
    folder = os.open(root, os.O_RDONLY | _DIRECTORY)
    try:
        for part in parts[:-1]:
            inner = _open_part(part, folder, os.O_RDONLY | _DIRECTORY | _NOFOLLOW)
            os.close(folder)
            folder = inner
        return _open_part(parts[-1], folder, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
    finally:
        os.close(folder)


def _open_part(name: str, folder: int, flags: int) -> int:
    try:
        return os.open(name, flags, dir_fd=folder)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK) and _is_link(name, folder):
            raise Skipped(f"{name} became a symlink after the folder was listed; not followed") from err
        raise


def _is_link(name: str, folder: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    except OSError:
        return False
