"""The intents file: built-ins, the operator's additions, and errors that say how to fix the file."""
from __future__ import annotations

from pathlib import Path

import pytest

from agents.intents.registry import OUT_OF_SCOPE, RegistryError, load_registry


def test_builtin_intents_trigger_skills_that_exist():
    from agents.skills import SKILLS

    registry = load_registry()
    for spec in registry:
        assert spec.target in SKILLS, spec.name
        assert len(spec.examples) >= 10, spec.name
    texts, labels = registry.training_data()
    assert OUT_OF_SCOPE in labels and len(texts) == len(labels)


# the built-in intent names are part of Deputy's interface: intents files and playbooks refer to them
EVERYDAY = ["help", "smalltalk", "remember", "ask", "add_task", "list_tasks", "complete_task", "remind", "list_reminders",
            "cancel_reminder", "schedule_meeting", "show_agenda", "move_meeting", "cancel_meeting", "send_email", "draft",
            "follow_up", "save_contact", "find_contact", "forget", "undo", "digest", "check_budget", "set_budget", "trace"]


def test_every_everyday_intent_is_built_in():
    registry = load_registry()
    assert [name for name in EVERYDAY if name not in registry] == []
    # the managing intents reach the skill of what they manage, with the action it takes
    assert registry.get("complete_task").target == "task" and registry.get("complete_task").defaults["action"] == "done"
    assert registry.get("list_reminders").target == registry.get("cancel_reminder").target == "reminders"
    assert registry.get("schedule_meeting").rename == {"when": "start", "emails": "attendees"}


def test_operator_file_adds_and_overrides_intents(tmp_path: Path):
    path = tmp_path / "intents.yaml"
    path.write_text(
        "intents:\n"
        "  - name: invoice_status\n"
        "    description: Check whether an invoice was paid\n"
        "    playbook: invoice_status\n"
        "    examples: [has acme paid invoice 42, is the march invoice paid, did the client pay]\n"
        "  - name: help\n"
        "    description: Explain Deputy\n"
        "    skill: help\n"
        "    examples: [explain yourself, who are you, what is this]\n"
    )
    registry = load_registry(path)
    assert registry.get("invoice_status").target == "playbook"
    assert registry.get("help").description == "Explain Deputy"
    assert registry.digest() != load_registry().digest()


def test_missing_operator_file_is_not_an_error(tmp_path: Path):
    assert load_registry(tmp_path / "nope.yaml").names == load_registry().names


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("intents: [", "not valid YAML"),
        ("hello: 1", "top-level `intents:` list"),
        ("intents:\n  - name: x_y\n    description: d\n    skill: help\n    examples: [one, two]\n", "at least 3 example"),
        ("intents:\n  - name: x_y\n    description: d\n    skill: help\n    playbook: p\n    examples: [a, b, c]\n", "exactly one of skill"),
        ("intents:\n  - name: Bad Name\n    description: d\n    skill: help\n    examples: [a, b, c]\n", "name"),
        ("intents:\n  - name: x_y\n    description: d\n    skill: help\n    slots: [colour]\n    examples: [a, b, c]\n", "slots"),
    ],
)
def test_a_broken_file_says_where_and_what(tmp_path: Path, content: str, says: str):
    path = tmp_path / "intents.yaml"
    path.write_text(content)
    with pytest.raises(RegistryError) as err:
        load_registry(path)
    assert str(path) in str(err.value) and says in str(err.value)
