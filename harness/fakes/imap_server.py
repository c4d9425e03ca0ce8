"""A minimal but real IMAP4rev1 server (RFC 3501 subset) on loopback, for imaplib to talk to over TCP.

Why not dovecot: a fresh CI machine does not have it, and a test that skips proves nothing. This
server speaks the wire protocol for exactly what Deputy uses: CAPABILITY, LOGIN, STARTTLS (and
implicit TLS), SELECT/EXAMINE, NOOP, SEARCH, FETCH (UID, FLAGS, RFC822, RFC822.HEADER, BODY[],
BODY.PEEK[]), STORE ±FLAGS, the UID forms of SEARCH/FETCH/STORE, CLOSE and LOGOUT. SEARCH knows
ALL, UNSEEN, SEEN, FROM, SINCE (by the Date header) and UID sets; sequence sets know n, n:m and *.

Tests reach in through `deliver()`, `flags()`, `fail_next` (answer the next command named X, e.g.
"SELECT" or "UID STORE", with the given "NO ..."/"BAD ...", or "DROP" to hang up) and `commands` (every command line received, passwords masked)."""
from __future__ import annotations

import asyncio
import datetime as dt
import re
import ssl
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.utils import parsedate_to_datetime


@dataclass
class StoredMessage:
    uid: int
    raw: bytes
    flags: set[str] = field(default_factory=set)


TOKEN = re.compile(rb'"((?:[^"\\]|\\.)*)"|(\([^)]*\))|(\S+)')


def _tokens(line: bytes) -> list[str]:
    """Atoms, parenthesised lists and quoted strings (with \\" and \\\\ unescaped)."""
    out = []
    for match in TOKEN.finditer(line):
        if match.group(1) is not None:
            out.append(re.sub(rb"\\(.)", rb"\1", match.group(1)).decode())
        else:
            out.append((match.group(2) or match.group(3)).decode())
    return out


def _header(raw: bytes, name: str) -> str:
    return str(message_from_bytes(raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n").get(name, ""))


def _seq_set(spec: str, top: int) -> set[int]:
    wanted: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.partition(":")
        a = top if lo == "*" else int(lo)
        b = a if not hi else (top if hi == "*" else int(hi))
        wanted.update(range(min(a, b), max(a, b) + 1))
    return wanted


class ImapServer:
    def __init__(self, username: str = "me", password: str = "inbox-pass", tls: ssl.SSLContext | None = None,
                 implicit_tls: bool = False) -> None:
        self.username = username
        self.password = password
        self.tls = tls
        self.implicit_tls = implicit_tls
        self.mailboxes: dict[str, list[StoredMessage]] = {"INBOX": []}
        self.next_uid = 1
        self.commands: list[str] = []
        self.fail_next: dict[str, str] = {}
        self.port = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    # --- what tests use
    def deliver(self, message: EmailMessage | bytes, mailbox: str = "INBOX", seen: bool = False) -> int:
        raw = message if isinstance(message, bytes) else message.as_bytes()
        raw = re.sub(rb"\r?\n", b"\r\n", raw)  # IMAP speaks CRLF
        with self._lock:
            uid, self.next_uid = self.next_uid, self.next_uid + 1
            self.mailboxes.setdefault(mailbox, []).append(StoredMessage(uid, raw, {"\\Seen"} if seen else set()))
        return uid

    def flags(self, uid: int, mailbox: str = "INBOX") -> set[str]:
        with self._lock:
            return next(set(m.flags) for m in self.mailboxes[mailbox] if m.uid == uid)

    def start(self) -> "ImapServer":
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            server = asyncio.start_server(self._session, "127.0.0.1", 0, ssl=self.tls if self.implicit_tls else None)
            self._server = self._loop.run_until_complete(server)
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the IMAP test server did not start")
        return self

    def stop(self) -> None:
        if self._loop and self._server and self._loop.is_running():
            # end the open sessions before the loop: a session task left pending when the loop goes
            # away is reported as never awaited
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(5)
        if self._loop and not self._loop.is_running():
            self._loop.close()

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        sessions = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in sessions:
            task.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)

    # --- the protocol
    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state = {"user": None, "mailbox": None, "readonly": False, "tls": self.implicit_tls}
        try:
            writer.write(b"* OK [CAPABILITY IMAP4rev1" + self._caps(state) + b"] Deputy test IMAP ready\r\n")
            await writer.drain()
            while line := await reader.readline():
                line = line.rstrip(b"\r\n")
                parts = line.split(b" ", 2)
                if len(parts) < 2:
                    writer.write(b"* BAD no tag\r\n")
                    continue
                tag, command = parts[0].decode(), parts[1].decode().upper()
                args = parts[2] if len(parts) > 2 else b""
                self.commands.append(f"{command} ***" if command == "LOGIN" else line.decode(errors="replace")[len(tag) + 1:])
                name = command
                if command == "UID":
                    name = "UID " + args.split(b" ", 1)[0].decode().upper()
                failure = self.fail_next.pop(name, None)
                if failure == "DROP":
                    writer.close()
                    return
                if failure:
                    writer.write(f"{tag} {failure}\r\n".encode())
                    await writer.drain()
                    continue
                if command == "STARTTLS" and self.tls and not state["tls"]:
                    writer.write(f"{tag} OK Begin TLS negotiation now\r\n".encode())
                    await writer.drain()
                    await writer.start_tls(self.tls)
                    state["tls"] = True
                    continue
                done = self._handle(tag, command, args, state, writer)
                await writer.drain()
                if done:
                    break
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def _caps(self, state: dict) -> bytes:
        return b" STARTTLS" if self.tls and not state["tls"] else b""

    def _handle(self, tag: str, command: str, args: bytes, state: dict, writer: asyncio.StreamWriter) -> bool:
        ok = lambda text: writer.write(f"{tag} OK {text}\r\n".encode())  # noqa: E731
        if command == "CAPABILITY":
            writer.write(b"* CAPABILITY IMAP4rev1" + self._caps(state) + b"\r\n")
            ok("CAPABILITY completed")
        elif command == "NOOP":
            ok("NOOP completed")
        elif command == "LOGOUT":
            writer.write(b"* BYE logging out\r\n")
            ok("LOGOUT completed")
            return True
        elif command == "LOGIN":
            user, password = (_tokens(args) + ["", ""])[:2]
            if (user, password) == (self.username, self.password):
                state["user"] = user
                ok("LOGIN completed")
            else:
                writer.write(f"{tag} NO [AUTHENTICATIONFAILED] Invalid credentials\r\n".encode())
        elif state["user"] is None:
            writer.write(f"{tag} BAD log in first\r\n".encode())
        elif command in ("SELECT", "EXAMINE"):
            name = (_tokens(args) or ["INBOX"])[0]
            name = "INBOX" if name.upper() == "INBOX" else name
            if name not in self.mailboxes:
                writer.write(f"{tag} NO [NONEXISTENT] no mailbox {name}\r\n".encode())
                return False
            state["mailbox"], state["readonly"] = name, command == "EXAMINE"
            with self._lock:
                box = self.mailboxes[name]
                writer.write(f"* {len(box)} EXISTS\r\n* 0 RECENT\r\n".encode())
                writer.write(b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n")
                writer.write(f"* OK [UIDVALIDITY 1] UIDs valid\r\n* OK [UIDNEXT {self.next_uid}] next\r\n".encode())
            ok(f"[{'READ-ONLY' if state['readonly'] else 'READ-WRITE'}] {command} completed")
        elif state["mailbox"] is None:
            writer.write(f"{tag} BAD select a mailbox first\r\n".encode())
        elif command == "CLOSE":
            state["mailbox"] = None
            ok("CLOSE completed")
        elif command == "UID":
            sub, _, rest = args.partition(b" ")
            self._mailbox_command(tag, sub.decode().upper(), rest, state, writer, by_uid=True)
        else:
            self._mailbox_command(tag, command, args, state, writer, by_uid=False)
        return False

    def _mailbox_command(self, tag: str, command: str, args: bytes, state: dict, writer: asyncio.StreamWriter,
                         by_uid: bool) -> None:
        with self._lock:
            box = self.mailboxes[state["mailbox"]]
            numbered = list(enumerate(box, start=1))
            if command == "SEARCH":
                criteria = [t.upper() for t in _tokens(args)]
                hits = [(n, m) for n, m in numbered if self._matches(m, criteria, n, len(box))]
                ids = [str(m.uid if by_uid else n) for n, m in hits]
                writer.write(("* SEARCH" + "".join(f" {i}" for i in ids) + "\r\n").encode())
            elif command in ("FETCH", "STORE"):
                spec, _, rest = args.partition(b" ")
                top = (box[-1].uid if by_uid else len(box)) if box else 0
                wanted = _seq_set(spec.decode(), top)
                chosen = [(n, m) for n, m in numbered if (m.uid if by_uid else n) in wanted]
                for n, m in chosen:
                    if command == "FETCH":
                        writer.write(self._fetch(n, m, rest.decode().upper(), by_uid, state["readonly"]))
                    else:
                        self._store(n, m, rest.decode(), state["readonly"], writer)
            else:
                writer.write(f"{tag} BAD unknown command {command}\r\n".encode())
                return
        writer.write(f"{tag} OK {'UID ' if by_uid else ''}{command} completed\r\n".encode())

    def _matches(self, m: StoredMessage, criteria: list[str], n: int, count: int) -> bool:
        i = 0
        while i < len(criteria):
            c = criteria[i]
            if c == "UNSEEN" and "\\Seen" in m.flags:
                return False
            if c == "SEEN" and "\\Seen" not in m.flags:
                return False
            if c == "UID":
                i += 1
                if m.uid not in _seq_set(criteria[i], m.uid if criteria[i].endswith("*") else 10**9):
                    return False
            if c == "FROM":
                i += 1
                if criteria[i] not in _header(m.raw, "From").upper():
                    return False
            if c == "SINCE":
                # the message's Date header stands in for the internal date (the day it arrived)
                i += 1
                sent = parsedate_to_datetime(_header(m.raw, "Date") or "Thu, 01 Jan 1970 00:00:00 +0000").date()
                if sent < dt.datetime.strptime(criteria[i].title(), "%d-%b-%Y").date():
                    return False
            i += 1
        return True

    def _fetch(self, n: int, m: StoredMessage, items: str, by_uid: bool, readonly: bool) -> bytes:
        parts: list[bytes] = []
        if by_uid or "UID" in items:
            parts.append(f"UID {m.uid}".encode())
        marks_seen = ("RFC822" in items.replace("RFC822.HEADER", "")) or ("BODY[" in items and "BODY.PEEK[" not in items)
        if marks_seen and not readonly:
            m.flags.add("\\Seen")
        if "FLAGS" in items:
            parts.append(f"FLAGS ({' '.join(sorted(m.flags))})".encode())
        if "RFC822.HEADER" in items:
            header = m.raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
            parts.append(f"RFC822.HEADER {{{len(header)}}}\r\n".encode() + header)
        if "BODY.PEEK[]" in items or "BODY[]" in items:
            parts.append(f"BODY[] {{{len(m.raw)}}}\r\n".encode() + m.raw)
        elif re.search(r"\bRFC822\b(?!\.)", items):
            parts.append(f"RFC822 {{{len(m.raw)}}}\r\n".encode() + m.raw)
        return f"* {n} FETCH (".encode() + b" ".join(parts) + b")\r\n"

    def _store(self, n: int, m: StoredMessage, rest: str, readonly: bool, writer: asyncio.StreamWriter) -> None:
        mode, _, flag_list = rest.partition(" ")
        flags = set(flag_list.strip("()").split())
        if not readonly:
            if mode.upper().startswith("+FLAGS"):
                m.flags |= flags
            elif mode.upper().startswith("-FLAGS"):
                m.flags -= flags
            else:
                m.flags = flags
        if ".SILENT" not in mode.upper():
            writer.write(f"* {n} FETCH (UID {m.uid} FLAGS ({' '.join(sorted(m.flags))}))\r\n".encode())
