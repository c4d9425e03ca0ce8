"""What a skill is handed in a worker: the request's context over the worker's runtime."""
from __future__ import annotations

from rq import get_current_job

from agents.drafts import DraftStore
from agents.intents.help import help_text
from agents.setup_hints import configured_names
from agents.skill_context import SkillContext
from jobs.digest_jobs import OutboxDigest, builder_for
from jobs.job_copies import JobCopies
from jobs.runtime import Runtime
from kernel.live_text import LiveText
from integrations.crm import crm_for
from memory.conversations import Conversations
from memory.forgetting import Forgetting
from memory.mail_marks import MailMarks
from memory.profiles import Profile, Profiles
from memory.workspaces import Workspaces


def zone_for(profile: Profile, configured: str) -> str:
    """What the operator said in chat wins; then a TIMEZONE someone set; then a channel's hint; then UTC."""
    if profile.timezone and (profile.timezone_from == "operator" or configured == "UTC"):
        return profile.timezone
    return configured


def skill_context(rt: Runtime, trace_id: str, actor: str, thread_id: str, channel: str = "",
                  reply_to: dict[str, str] | None = None) -> SkillContext:
    conversation = rt.settings.conversation
    profiles = Profiles(rt.redis, rt.settings.workspace)
    profile = profiles.get(actor)
    return SkillContext(
        workspace=rt.settings.workspace,
        trace_id=trace_id,
        actor=actor,
        thread_id=thread_id,
        tasks=rt.tasks,
        facts=rt.facts,
        notes=rt.notes,
        events=rt.events,
        help_text=help_text(configured_names(rt.agent, rt.llm)),
        channel=channel,
        reply_to=reply_to or {},
        budgets=rt.budgets,
        reminders=rt.reminders,
        digests=OutboxDigest(rt, builder_for(rt)),
        agent=rt.agent,
        recall=rt.recall(),
        drafts=DraftStore(rt.redis, rt.settings.workspace),
        llm=rt.llm,
        partial=LiveText(rt.redis, rt.settings.workspace, thread_id, trace_id) if channel == "console" else None,
        approvers=rt.approvers,
        timezone=zone_for(profile, rt.settings.timezone),
        work_hours=(profile.work_start if profile.work_start is not None else conversation.work_start,
                    profile.work_end if profile.work_end is not None else conversation.work_end),
        profiles=profiles,
        conversation=Conversations(rt.redis, rt.settings.workspace, conversation.question_ttl_s),
        default_duration_min=conversation.default_duration_min,
        mail=MailMarks(rt.redis, rt.settings.workspace),
        forgetting=forgetting_for(rt),
        workspaces=Workspaces(rt.redis),
        undo=rt.agent.undo,
        undo_window_s=rt.settings.undo.window_s,
    )


def forgetting_for(rt: Runtime) -> Forgetting:
    """Forgetting over every store of the worker's runtime, rq's job records included."""
    job = get_current_job()
    return Forgetting(rt.notes, rt.facts, rt.tasks, rt.memory.backends, rt.events,
                      copies=[JobCopies(rt.redis, job.id if job else None)])
