"""What `deputy ingest` refuses to read: links out of the folder, files too large, PDFs past their
page cap or time budget; and the per-file report that says so."""
from __future__ import annotations

import io
import itertools
import shutil
import threading
from pathlib import Path

import pytest
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject
from redis import Redis
from rq import Queue

from bot.cli import main
from jobs.memory_wiring import memory_path
from jobs.queues import JobQueues
from jobs.worker import run_burst
from memory.embeddings import MiniLmEmbedder
from memory.events import EventLog
from memory.folder import list_files
from memory.ingest import Ingestor, Limits
from memory.readers import read_pdf
from memory.sqlite_store import SqliteStore
from tests.waiting import wait_for

SECRET = "The vault code is 4711 and the root password is hunter2."


@pytest.fixture(scope="module")
def embedder() -> MiniLmEmbedder:
    return MiniLmEmbedder()


def pdf(*pages: str) -> bytes:
    """A PDF whose pages each carry one line of text, written by pypdf."""
    writer = PdfWriter()
    font = DictionaryObject({NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
                             NameObject("/BaseFont"): NameObject("/Helvetica")})
    for text in pages:
        page = writer.add_blank_page(612, 792)
        content = DecodedStreamObject()
        content.set_data(f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode())
        page.replace_contents(content)
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secrets = tmp_path / "home" / ".ssh"
    secrets.mkdir(parents=True)
    (secrets / "id_notes.txt").write_text(SECRET)
    return secrets


@pytest.fixture
def docs(tmp_path: Path, outside: Path) -> Path:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "notes.md").write_text("The office lease ends in September; the landlord is Mr. Okafor.")
    (docs / "sub" / "plan.txt").write_text("Expense reports are due on the 5th of each month.")
    (docs / "passwd.txt").symlink_to(outside / "id_notes.txt")
    # a relative link whose `..` climbs out of the folder
    (docs / "sub" / "climb.txt").symlink_to(Path("..") / ".." / "home" / ".ssh" / "id_notes.txt")
    (docs / "keys").symlink_to(outside, target_is_directory=True)
    # a link to a file inside the folder: that file is read once
    (docs / "lease.md").symlink_to(docs / "notes.md")
    return docs


def lines(text: str) -> dict[str, str]:
    """Report lines by file name: 'ingested …', 'skipped …', 'failed …'."""
    return {line.split(":")[0].split("/")[-1]: line for line in text.splitlines() if line.startswith(("ingested", "skipped", "failed"))}


def stored_texts(settings, embedder: MiniLmEmbedder) -> str:  # type: ignore[no-untyped-def]
    with SqliteStore(memory_path(settings), embedder) as store:
        return "\n".join(hit.item.text for hit in store.search("default", "vault code root password landlord", limit=50))


def test_links_out_of_the_folder_are_skipped_and_never_remembered(docs: Path, settings, capsys, embedder) -> None:  # type: ignore[no-untyped-def]
    assert main(["ingest", str(docs), "--now"]) == 0
    out = capsys.readouterr().out
    report = lines(out)
    for name in ("passwd.txt", "climb.txt", "keys"):
        assert report[name].startswith("skipped ") and "outside the folder" in report[name] and "not followed" in report[name]
    assert report["notes.md"].startswith("ingested ") and "lease.md" not in report
    assert out.count("notes.md: ") == 1
    assert "Ingested 2 of 5 file(s)" in out and "3 skipped" in out
    remembered = stored_texts(settings, embedder)
    assert "Mr. Okafor" in remembered and "4711" not in remembered and "hunter2" not in remembered


def test_background_ingest_queues_only_files_inside_and_records_the_skips(docs: Path, settings, redis: Redis,  # type: ignore[no-untyped-def]
                                                                        capsys, embedder) -> None:
    assert main(["ingest", str(docs)]) == 0
    assert "skipped " in capsys.readouterr().out
    assert Queue("background", connection=redis).count == 2
    run_burst(redis)
    events = EventLog(redis, "default").recent(100, kinds=["memory.ingested", "memory.ingest_skipped"])
    outcomes = sorted((Path(e.data["path"]).name, e.kind) for e in events)
    assert outcomes == [("climb.txt", "memory.ingest_skipped"), ("keys", "memory.ingest_skipped"),
                        ("notes.md", "memory.ingested"), ("passwd.txt", "memory.ingest_skipped"), ("plan.txt", "memory.ingested")]
    assert "4711" not in stored_texts(settings, embedder)


def test_a_file_swapped_for_a_link_after_listing_is_refused_by_its_job(docs: Path, outside: Path, settings, redis: Redis,  # type: ignore[no-untyped-def]
                                                                        embedder) -> None:
    assert main(["ingest", str(docs)]) == 0
    # between listing and reading: a file becomes a link out, a folder becomes a link out
    (docs / "notes.md").unlink()
    (docs / "notes.md").symlink_to(outside / "id_notes.txt")
    (docs / "sub" / "plan.txt").rename(outside / "plan.txt")
    shutil.rmtree(docs / "sub")
    (docs / "sub").symlink_to(outside, target_is_directory=True)
    run_burst(redis)
    skipped = {Path(e.data["path"]).name: e.data["reason"]
               for e in EventLog(redis, "default").recent(100, kinds=["memory.ingest_skipped"]) if e.actor == "worker"}
    assert "became a symlink" in skipped["notes.md"] and "became a symlink" in skipped["plan.txt"]
    with SqliteStore(memory_path(settings), embedder) as store:
        assert store.count("default") == 0


def test_a_job_path_that_climbs_out_with_dots_is_refused(docs: Path, outside: Path, embedder) -> None:
    root = docs.resolve()
    climbing = root / ".." / "home" / ".ssh" / "id_notes.txt"
    with SqliteStore(docs.parent / "m.sqlite3", embedder) as store:
        for path in (climbing, outside / "id_notes.txt"):
            result = Ingestor(store, "acme").file(path, root=root)
            assert result.outcome == "skipped" and "not read" in result.reason
        assert store.count("acme") == 0


def test_folder_link_loops_end(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "deep.md").write_text("deep")
    (root / "a" / "up").symlink_to(root, target_is_directory=True)
    (root / "a" / "b" / "again").symlink_to(Path(".."), target_is_directory=True)
    (root / "a" / "self").symlink_to(Path("."), target_is_directory=True)
    (root / "x.md").symlink_to(root / "y.md")
    (root / "y.md").symlink_to(root / "x.md")
    listing = list_files(root, 2**20)
    assert listing.files == [root.resolve() / "a" / "b" / "deep.md"]
    assert {(p.name, reason) for p, reason in listing.skipped} == {("x.md", "a symlink loop"), ("y.md", "a symlink loop")}


def test_an_oversized_file_is_skipped_with_the_reason(tmp_path: Path, settings, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                                     capsys, embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "small.txt").write_text("Anna from Globex prefers phone calls after 2pm.")
    (docs / "dump.txt").write_text("Bob at Initech pays late. " * 1000)
    monkeypatch.setenv("INGEST_MAX_FILE_MB", "0.01")
    assert main(["ingest", str(docs), "--now"]) == 0
    report = lines(capsys.readouterr().out)
    assert report["dump.txt"].startswith("skipped ") and "too large: 0.0248 MB, over the 0.01 MB limit (INGEST_MAX_FILE_MB)" in report["dump.txt"]
    assert report["small.txt"].startswith("ingested ")
    assert "Initech" not in stored_texts(settings, embedder)


def test_a_file_that_grew_after_listing_is_skipped_by_its_reader(tmp_path: Path, embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "log.txt").write_text("short")
    listing = list_files(docs, 1000)
    (docs / "log.txt").write_text("much longer now " * 100)
    with SqliteStore(tmp_path / "m.sqlite3", embedder) as store:
        result = Ingestor(store, "acme", limits=Limits(max_file_bytes=1000)).file(listing.files[0], root=listing.root)
        assert (result.outcome, result.chunks) == ("skipped", 0) and "too large" in result.reason
        assert store.count("acme") == 0


def test_a_pdf_past_the_page_cap_is_read_up_to_it_and_reported(tmp_path: Path, settings, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                                              capsys, embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "manual.pdf").write_bytes(pdf("The landlord is Mr. Okafor.", "Rent is due on the 3rd.", "The vault code is 4711."))
    (docs / "short.pdf").write_bytes(pdf("Expense reports are due on the 5th."))
    monkeypatch.setenv("INGEST_MAX_PDF_PAGES", "2")
    assert main(["ingest", str(docs), "--now"]) == 0
    report = lines(capsys.readouterr().out)
    assert report["manual.pdf"].startswith("ingested ") and report["manual.pdf"].endswith(
        "; truncated: read the first 2 of 3 pages (INGEST_MAX_PDF_PAGES)")
    assert report["short.pdf"].startswith("ingested ") and "truncated" not in report["short.pdf"]
    remembered = stored_texts(settings, embedder)
    assert "Mr. Okafor" in remembered and "Rent is due" in remembered and "4711" not in remembered


def test_pdf_extraction_stops_when_its_time_is_spent() -> None:
    ticks = itertools.count(0, 25)  # each look at the clock: 25 s later
    reading = read_pdf("slow.pdf", pdf(*(f"Page {n} text." for n in range(1, 6))), Limits(pdf_timeout_s=60),
                       clock=lambda: float(next(ticks)))
    assert [s.meta["page"] for s in reading.sections] == ["1", "2", "3"]
    assert reading.left_out == "timed out: stopped after 60 s at page 3 of 5 (INGEST_PDF_TIMEOUT_S)"


def test_the_report_gives_every_file_its_outcome(tmp_path: Path, outside: Path, settings, redis: Redis,  # type: ignore[no-untyped-def]
                                                monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ok.md").write_text("Anna from Globex prefers phone calls after 2pm.")
    (docs / "photo.png").write_bytes(b"\x89PNG")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    (docs / "big.csv").write_text("a,b\n" + "1,2\n" * 5000)
    (docs / "book.pdf").write_bytes(pdf("One.", "Two.", "Three."))
    (docs / "link.txt").symlink_to(outside / "id_notes.txt")
    monkeypatch.setenv("INGEST_MAX_FILE_MB", "0.01")
    monkeypatch.setenv("INGEST_MAX_PDF_PAGES", "1")
    assert main(["ingest", str(docs), "--now"]) == 1
    captured = capsys.readouterr()
    report = lines(captured.out) | lines(captured.err)
    assert {name: line.split()[0] for name, line in report.items()} == {
        "ok.md": "ingested", "book.pdf": "ingested", "photo.png": "skipped", "big.csv": "skipped", "link.txt": "skipped",
        "broken.pdf": "failed"}
    assert "unsupported kind of file" in report["photo.png"] and "too large" in report["big.csv"]
    assert "truncated: read the first 1 of 3 pages" in report["book.pdf"] and "not a readable PDF" in captured.err
    assert "Ingested 2 of 6 file(s)" in captured.out and "3 skipped; 1 failed" in captured.out

    # the same, as background jobs: each job's result and event carries the outcome and reason
    (docs / "ok.md").write_text("Bob at Initech pays late.")
    assert main(["ingest", str(docs)]) == 0
    run_burst(redis)
    events = [e for e in EventLog(redis, "default").recent(100) if e.actor == "worker"]
    outcomes = {Path(e.data["path"]).name: (e.kind, e.data["outcome"], e.data["reason"]) for e in events}
    assert outcomes["ok.md"] == ("memory.ingested", "ingested", "")
    assert outcomes["book.pdf"] == ("memory.ingested", "ingested", "truncated: read the first 1 of 3 pages (INGEST_MAX_PDF_PAGES)")
    assert outcomes["broken.pdf"][:2] == ("memory.ingest_failed", "failed") and "not a readable PDF" in outcomes["broken.pdf"][2]
    assert len(outcomes) == 3
    queues = JobQueues(redis)
    results = [queues.fetch(job_id).return_value() for job_id in  # type: ignore[union-attr]
               Queue("background", connection=redis).finished_job_registry.get_job_ids()]
    assert sorted((Path(r["path"]).name, r["outcome"], r["reason"][:9]) for r in results) == [
        ("book.pdf", "ingested", "truncated"), ("broken.pdf", "failed", "broken.pd"), ("ok.md", "ingested", "")]


def test_wait_reports_each_jobs_outcome_as_it_finishes(docs: Path, settings, redis: Redis, capsys) -> None:  # type: ignore[no-untyped-def]
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    waiting: list[int] = []
    cli = threading.Thread(target=lambda: waiting.append(main(["ingest", str(docs), "--wait"])))
    cli.start()
    wait_for(lambda: Queue("background", connection=redis).count >= 3, timeout=30, what="the three ingest jobs")
    run_burst(redis)
    cli.join(timeout=30)
    captured = capsys.readouterr()
    report = lines(captured.out) | lines(captured.err)
    assert waiting == [1]
    assert {name: line.split()[0] for name, line in report.items()} == {
        "notes.md": "ingested", "plan.txt": "ingested", "broken.pdf": "failed", "passwd.txt": "skipped", "climb.txt": "skipped",
        "keys": "skipped"}
    assert "not a readable PDF" in report["broken.pdf"] and report["broken.pdf"] in captured.err
