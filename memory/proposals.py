"""Fact proposals: details someone else's text offers (an email signature, a webhook payload) wait here
until the operator confirms or rejects them; only a confirmed one becomes a fact."""
from __future__ import annotations

import hashlib
import time
from typing import Literal

from pydantic import BaseModel

from kernel.keys import WorkspaceStore

Status = Literal["pending", "confirmed", "rejected"]


class Proposal(BaseModel):
    id: str
    # the contact's name as the text gives it, and the details it offers (email, phone, company, title)
    name: str
    details: dict[str, str]
    # where it came from (email, webhook, file) and which one (a sender, a hook's name)
    source: str
    origin: str = ""
    proposed_at: float
    status: Status = "pending"
    decided_by: str = ""


class Proposals(WorkspaceStore):
    def propose(self, name: str, details: dict[str, str], source: str, origin: str = "") -> Proposal:
        """The same offer from the same place is one proposal, however often it arrives."""
        digest = hashlib.sha256(repr((name.lower(), sorted(details.items()), source, origin)).encode()).hexdigest()[:12]
        proposal = Proposal(id=digest, name=name, details=details, source=source, origin=origin, proposed_at=time.time())
        self.redis.hsetnx(self.keys("proposals"), digest, proposal.model_dump_json())
        return self.get(digest) or proposal

    def get(self, proposal_id: str) -> Proposal | None:
        raw = self.redis.hget(self.keys("proposals"), proposal_id)
        return Proposal.model_validate_json(raw) if raw else None

    def decide(self, proposal_id: str, status: Status, actor: str) -> Proposal | None:
        """The pending proposal, now decided; None when there is none or it was decided already."""
        key = self.keys("proposals")
        with self.redis.pipeline() as pipe:
            pipe.watch(key)
            raw = pipe.hget(key, proposal_id)
            current = Proposal.model_validate_json(raw) if raw else None
            if current is None or current.status != "pending":
                return None
            decided = current.model_copy(update={"status": status, "decided_by": actor})
            pipe.multi()
            pipe.hset(key, proposal_id, decided.model_dump_json())
            pipe.execute()
        return decided

    def pending(self) -> list[Proposal]:
        rows = [Proposal.model_validate_json(v) for v in self.redis.hvals(self.keys("proposals"))]
        return sorted((p for p in rows if p.status == "pending"), key=lambda p: p.proposed_at)
