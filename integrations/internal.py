"""Capabilities on Deputy's own state: tasks, notes and contacts. All dedupe by our key ("natural")."""
from __future__ import annotations

from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field
from redis import Redis

from integrations.capability import Args, Capability, EffectContext, Health, PermanentError, RetryPolicy, RiskClass
from memory.contacts import Contacts, ContactView
from memory.facts import ChangedSince
from memory.notes import NoteStore
from memory.tasks import Task, TaskStore

Undo = Callable[[Args, Args], dict[str, Any] | None]

LOCAL = RetryPolicy(attempts=2, base_s=0.05, max_s=0.5, jitter=0.05)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- contacts (the people Deputy has dealt with; also what makes a recipient "known" to the risk score)

class Contact(BaseModel):
    email: str
    name: str = ""
    company: str = ""
    notes: str = ""
    phone: str = ""
    updated_at: float = 0.0


def contact_out(view: ContactView) -> Contact:
    return Contact(email=view.email, name=view.name, company=view.get("company"), notes=view.get("notes"),
                   phone=view.get("phone"), updated_at=view.updated_at)


class ContactBook:
    """The contacts (memory/contacts.py) by email address: who Deputy knows, for the risk score and plans."""

    def __init__(self, redis: Redis, workspace: str) -> None:
        self.redis = redis
        self.contacts = Contacts(redis, workspace)

    def upsert(self, contact: Contact) -> Contact:
        details = {"email": contact.email, "company": contact.company, "notes": contact.notes, "phone": contact.phone}
        view, _ = self.contacts.save(contact.name or contact.email.strip().lower(), details)
        return contact_out(view)

    def get(self, email: str) -> Contact | None:
        view = self.contacts.by_email(email)
        return contact_out(view) if view else None

    def find(self, query: str, limit: int = 5) -> list[Contact]:
        return [contact_out(v) for v in self.contacts.find(query, limit)]

    def known(self, email: str) -> bool:
        return self.contacts.by_email(email) is not None



# --- inputs and outputs

class TaskCreate(_In):
    title: str = Field(min_length=1, max_length=500)
    project: str = "inbox"
    due: str | None = None
    # the contact's address when the task is about someone (a follow-up's reply): it becomes their interaction
    contact: str = ""


class TaskOut(BaseModel):
    id: int
    title: str
    project: str


class TaskList(_In):
    status: str = "open"
    project: str | None = None


class TaskListOut(BaseModel):
    tasks: list[TaskOut]


class NoteAdd(_In):
    text: str = Field(min_length=1, max_length=8000)
    project: str = "inbox"


class NoteOut(BaseModel):
    id: str
    created: bool


class TaskRestore(_In):
    id: int
    # the version to put back; None: there was no task before the change, so it goes
    task: Task | None = None
    # the task as the change left it: a task changed again since is left alone (unchecked when None)
    expect: Task | None = None


class TaskRestored(BaseModel):
    id: int
    # False: it already was as the undo leaves it
    changed: bool


class NoteRemove(_In):
    id: str


class NoteRemoved(BaseModel):
    id: str
    removed: bool


class NoteSearch(_In):
    query: str = Field(min_length=1)
    limit: int = Field(default=5, ge=1, le=20)


class NoteHits(BaseModel):
    notes: list[str]


class ContactUpsert(_In):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    name: str = ""
    company: str = ""
    notes: str = ""


class ContactLookup(_In):
    query: str = Field(min_length=1)


class ContactsOut(BaseModel):
    contacts: list[Contact]


def _added_task(args: Args, output: Args) -> str:
    return f"Added task #{output.get('id')}: {output.get('title')}"


def task_undo(task_id: int, before: Task | None, after: Task | None) -> dict[str, Any]:
    """tasks.restore's arguments that take a change to task TASK_ID back (BEFORE: None when it made the task)."""
    return TaskRestore(id=task_id, task=before, expect=after).model_dump(mode="json")


def _restored_task(args: Args, output: Args) -> str:
    put_back = args.get("task")
    if isinstance(put_back, dict):
        return f"Task #{output.get('id')} is back as it was: {put_back.get('title')}"
    return f"Removed task #{output.get('id')}."


def _found_contacts(args: Args, output: Args) -> str:
    found = output.get("contacts") or []
    return f"Found {len(found)} contact{'s' if len(found) != 1 else ''}."


def _redis_health(redis: Redis) -> Health:
    redis.ping()
    return Health(ok=True, detail="redis answers")


def _own_state(redis: Redis, name: str, description: str, input_model: type[BaseModel], output_model: type[BaseModel],
               writes: bool, run: Callable[[BaseModel, EffectContext], BaseModel],
               summary: Callable[[Args, Args], str] | None = None, compensation: str | None = None,
               undo: Undo | None = None) -> Capability:
    """A capability on Deputy's own state, healthy while Redis answers: a write is natural (the store dedupes by
    the source event) and reversible where it names its compensation (a restore, which is not undone in turn);
    a read has no effect; both retry like local calls."""
    return Capability(name, description, input_model, output_model, RiskClass.INTERNAL_WRITE if writes else RiskClass.READ,
                      side_effect=writes, reversible=not writes or compensation is not None, compensation=compensation,
                      idempotency="natural" if writes else "ledger", retry=LOCAL, run=run, health=lambda: _redis_health(redis),
                      summary=summary, undo=undo)


def changed_since(err: ChangedSince) -> PermanentError:
    return PermanentError(f"{err} (check it and change it by hand if it should still go back)")


def task_capabilities(store: TaskStore) -> list[Capability]:

    def create(args: BaseModel, ctx: EffectContext) -> TaskOut:
        assert isinstance(args, TaskCreate)
        # the idempotency key doubles as the task's source event: a retry returns the same task
        task = store.add(args.title, project=args.project, source_event=ctx.idempotency_key, due=args.due,
                         trust="untrusted" if ctx.untrusted else "operator")
        return TaskOut(id=task.id, title=task.title, project=task.project)

    def list_(args: BaseModel, ctx: EffectContext) -> TaskListOut:
        assert isinstance(args, TaskList)
        tasks = store.list(status=args.status, project=args.project)
        return TaskListOut(tasks=[TaskOut(id=t.id, title=t.title, project=t.project) for t in tasks])

    def restore(args: BaseModel, ctx: EffectContext) -> TaskRestored:
        assert isinstance(args, TaskRestore)
        try:
            return TaskRestored(id=args.id, changed=store.restore(args.id, args.task, args.expect))
        except ChangedSince as err:
            raise changed_since(err) from err

    return [
        _own_state(store.redis, "tasks.create", "Add a task to the operator's to-do list", TaskCreate, TaskOut, writes=True, run=create,
                   summary=_added_task, compensation="tasks.restore",
                   undo=lambda args, output: {"id": output["id"], "task": None}),
        _own_state(store.redis, "tasks.list", "List the operator's tasks", TaskList, TaskListOut, writes=False, run=list_),
        _own_state(store.redis, "tasks.restore", "Put a task back as it was before a change (an undo)", TaskRestore, TaskRestored,
                   writes=True, run=restore, summary=_restored_task),
    ]


def note_capabilities(store: NoteStore) -> list[Capability]:

    def add(args: BaseModel, ctx: EffectContext) -> NoteOut:
        assert isinstance(args, NoteAdd)
        note, created = store.add(args.text, project=args.project, author="deputy", source_event=ctx.trace_id, source="plan",
                                  trust="untrusted" if ctx.untrusted else "operator")
        return NoteOut(id=note.id, created=created)

    def search(args: BaseModel, ctx: EffectContext) -> NoteHits:
        assert isinstance(args, NoteSearch)
        return NoteHits(notes=[n.text for n, _ in store.search(args.query, limit=args.limit)])

    def remove(args: BaseModel, ctx: EffectContext) -> NoteRemoved:
        assert isinstance(args, NoteRemove)
        return NoteRemoved(id=args.id, removed=store.delete(args.id))

    return [
        # a note that was already there stays: only the note this effect made is taken back
        _own_state(store.redis, "notes.add", "Remember a note", NoteAdd, NoteOut, writes=True, run=add, compensation="notes.remove",
                   undo=lambda args, output: {"id": output["id"]} if output.get("created") else None),
        _own_state(store.redis, "notes.search", "Find notes by keywords", NoteSearch, NoteHits, writes=False, run=search),
        _own_state(store.redis, "notes.remove", "Remove a note Deputy made (an undo)", NoteRemove, NoteRemoved, writes=True,
                   run=remove, summary=lambda args, output: "Removed the note." if output.get("removed") else "The note was already gone."),
    ]
