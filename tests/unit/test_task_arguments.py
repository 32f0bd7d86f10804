"""What a task message shows of its arguments (task events, Flower, ``celery inspect``): ids and
numbers, never a conversation's text. Pure; tests/integration/test_context.py checks real messages."""

from __future__ import annotations

from leadscore.serialization import shown

SECRET = "Petrichor-4471"
LEAD = {"id": "lead-7", "questions_asked": 3, "context": {"messages": [{"from": "lead", "at": "2026-03-01T10:00:00Z", "text": SECRET}]}}


def test_a_conversation_shows_as_a_placeholder_and_long_text_as_its_length() -> None:
    assert shown((LEAD,)) == "[{'id': 'lead-7', 'questions_asked': 3, 'context': '<context>'}]"
    assert shown(({"id": "x", "note": SECRET * 10},)) == "[{'id': 'x', 'note': '<140 characters>'}]"
    assert shown(("job-1", 3, "lead_scorer")) == "['job-1', 3, 'lead_scorer']"
    assert shown({"model": "lead_scorer", "explain": True}) == "{'model': 'lead_scorer', 'explain': True}"


def test_a_batch_shows_its_first_leads_and_how_many_more() -> None:
    text = shown(([{"id": k, "context": LEAD["context"]} for k in range(25)],))
    assert SECRET not in text and text.count("'<context>'") == 20 and text.endswith("'<5 more>']]")


def test_deeper_values_show_as_their_type() -> None:
    assert shown(({"id": "x", "a": {"b": {"c": SECRET}}},)) == "[{'id': 'x', 'a': {'b': '<dict>'}}]"
