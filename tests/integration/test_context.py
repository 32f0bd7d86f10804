"""Context leads through a real broker and prefork worker: same score as the feature form, derived
features snapshotted, malformed contexts refused while the worker keeps consuming, no text leaked."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from leadscore import explain_lead, predict_batch, score_lead
from leadscore.client.score_client import ScoreClient
from leadscore.settings import get_settings
from leadscore.stores.event_types import EventType
from leadscore.stores.events import decode, stream_key
from leadscore.tasks.scoring import ping
from leadscore.worker.snapshots import snapshots_key
from ml_core.context import MAX_MESSAGES
from ml_core.errors import InvalidLeadError, InvalidPayloadError
from ml_core.synthetic.lead_conversations import conversations
from tests.waits import poll

MODEL = "lead_scorer"
SECRET = "Quixotic-5519"  # stands for what a lead wrote
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "lead_scorer" / "conversations"



def conversation(lead_id: str) -> dict[str, Any]:
    lead = json.loads((EXAMPLES / "hot.json").read_text())
    lead["id"] = lead_id
    lead["context"]["messages"][1]["text"] += f" I'm {SECRET}."
    return lead


def test_a_context_lead_scores_as_its_features_and_its_snapshot_holds_them(worker: Path) -> None:
    # given a conversation, scored by the worker
    from_context = score_lead.delay(conversation("ctx-int-1")).get(timeout=10)
    features = from_context["features"]
    # when the same lead is sent as the features the worker derived
    from_features = score_lead.delay({"id": "ctx-int-1", **features}).get(timeout=10)
    # then both give the same result, and the snapshot outcomes train on is those features
    for key in ("lead_id", "score", "probability", "label", "confidence", "escalated", "model_version"):
        assert from_context[key] == from_features[key], key
    settings = get_settings()
    store = redis.Redis.from_url(settings.snapshots_url or settings.lock_url)
    snapshot = poll(lambda: store.lindex(snapshots_key(MODEL, "ctx-int-1"), -1), what="the snapshot of ctx-int-1")
    assert json.loads(snapshot)["f"] == features
    batch = predict_batch.delay([conversation("ctx-int-2"), {"id": "ctx-int-3", **features}]).get(timeout=10)
    assert batch[0]["probability"] == batch[1]["probability"] == from_context["probability"]
    # an explanation of a conversation names the context rule behind each feature
    explained = score_lead.delay(conversation("ctx-int-4"), explain=True).get(timeout=30)
    top = explained["explanation"]["top"]
    assert top and all(entry["rule"] and entry["value"] is not None for entry in top)
    assert explain_lead.delay(conversation("ctx-int-4")).get(timeout=30)["explanation"] == explained["explanation"]


BAD = [
    ({"messages": "hello " + SECRET}, "context.messages"),
    ({"messages": [{"from": "lead", "at": f"{SECRET} o'clock", "text": SECRET}]}, "context.messages[0].at"),
    (
        {"messages": [{"from": "lead", "at": "2026-03-02T10:00:00Z", "text": SECRET}, {"from": "agent", "at": "2026-03-01T10:00:00Z", "text": SECRET}]},
        "context.messages[1].at",
    ),
    ({"messages": [{"from": "lead", "at": "2026-03-02T10:00:00Z", "text": SECRET + "\ud800"}]}, "context.messages[0].text"),
    (SECRET, "context"),
]


def test_task_messages_show_a_conversation_as_a_placeholder(worker: Path) -> None:
    # what task events, Flower and `celery inspect` show of a task's arguments: the message's argsrepr
    from celery.signals import before_task_publish

    shown: dict[str, str] = {}

    def record(sender: str, headers: dict[str, Any], **_: Any) -> None:
        shown[sender] = headers["argsrepr"] + headers["kwargsrepr"]

    before_task_publish.connect(record, weak=False)
    try:
        score_lead.delay(conversation("ctx-shown-1")).get(timeout=10)
        predict_batch.delay([conversation("ctx-shown-2")], model=MODEL).get(timeout=10)
        explain_lead.apply_async(args=[conversation("ctx-shown-3")]).get(timeout=30)
    finally:
        before_task_publish.disconnect(record)
    for task in ("leadscore.score_lead", "leadscore.predict_batch", "leadscore.explain_lead"):
        assert "'context': '<context>'" in shown[task] and SECRET not in shown[task], task
    assert "ctx-shown-1" in shown["leadscore.score_lead"] and "lead_scorer" in shown["leadscore.predict_batch"]


def test_malformed_contexts_get_typed_errors_the_worker_keeps_consuming_and_no_text_leaks(worker: Path) -> None:
    for context, part in BAD:
        with pytest.raises(InvalidLeadError) as caught:
            score_lead.delay({"id": "ctx-bad", "context": context}).get(timeout=10)
        assert caught.value.lead_id == "ctx-bad" and part in caught.value.fields
        assert SECRET not in str(caught.value)
        assert ping.delay().get(timeout=10)["pong"] is True
    # a conversation nested too deep to decode is refused, and the worker's log line names no text
    deep: Any = SECRET
    for _ in range(40):
        deep = [deep]
    with pytest.raises(InvalidPayloadError, match="nested deeper"):
        score_lead.delay({"id": "ctx-nested", "context": {"messages": [{"text": SECRET, "at": deep}]}}).get(timeout=10)
    assert ping.delay().get(timeout=10)["pong"] is True
    big = conversation("ctx-big")
    big["context"]["messages"] = [{"from": "lead", "at": f"2026-03-02T{h:02d}:00:00Z", "text": SECRET * 10_000} for h in range(24)]
    assert score_lead.delay(big).get(timeout=10)["features"]["message_length_avg"] == 2000
    # a 10,000-message thread is read from its last MAX_MESSAGES messages: one question per lead message
    start = datetime(2026, 3, 1, tzinfo=UTC)
    long = [{"from": "agent" if i % 2 == 0 else "lead", "at": (start + timedelta(minutes=i)).isoformat(), "text": f"{SECRET}?"}
            for i in range(10_000)]
    threaded = score_lead.delay({"id": "ctx-long", "context": {"messages": long}}).get(timeout=10)
    assert threaded["features"]["questions_asked"] == MAX_MESSAGES // 2
    assert ping.delay().get(timeout=10)["pong"] is True
    # no Redis key name, stream entry or worker log line carries what a lead wrote
    settings = get_settings()
    for url in {settings.cache_url, settings.events_url or settings.cache_url, settings.snapshots_url or settings.lock_url}:
        r = redis.Redis.from_url(url)
        keys = list(r.scan_iter(count=1000))
        assert not [k for k in keys if SECRET.encode() in k]
        for key in keys:
            if r.type(key) == b"stream":
                assert SECRET.encode() not in repr(r.xrange(key)).encode()
    assert SECRET not in worker.read_text()


def test_the_score_client_caches_a_conversation_by_its_derived_features(worker: Path) -> None:
    lead = conversation("ctx-client-1")
    with ScoreClient() as client:
        # given a conversation scored through the client (the cache may already hold its features)
        fresh = client.score(lead)
        assert set(fresh["features"]) == set(client.registry.spec(MODEL).feature_names)
        # then, once the worker's cache write lands, the same conversation is a hit without the broker
        hit = poll(lambda: client.lookup(lead), what="a cache hit")
        assert hit["cached"] is True and hit["probability"] == fresh["probability"]
        assert hit["features"] == fresh["features"]  # a hit says what was derived, as a fresh score does
        # and the cache key is the derived features' digest: the feature form finds the same entry,
        # without a features object (nothing was derived for it)
        twin = client.lookup({"id": "ctx-client-2", **fresh["features"]})
        assert twin is not None and twin["probability"] == fresh["probability"] and "features" not in twin


def test_score_file_reads_conversations_from_json_lines_and_writes_what_was_derived(worker: Path, tmp_path: Path) -> None:
    import csv

    from click.testing import CliRunner

    from leadscore.cli.main import main

    # Given a JSON-lines file of conversations (one with what its lead wrote), a lead given as
    # features and a line that is not JSON
    leads = [json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json"))] + [conversation("ctx-file-secret")]
    given = {"id": "ctx-file-features", **score_lead.delay(leads[0]).get(timeout=10)["features"]}
    lines = [*(json.dumps(lead).encode() for lead in [*leads, given]), b'{"id": "latin-1", "context": "\xe9t\xe9"}', b"{oops"]
    (tmp_path / "leads.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    # When it is scored as a bulk file, and its results fetched again as JSON lines
    result = CliRunner().invoke(main, ["score-file", str(tmp_path / "leads.jsonl"), "--out", str(tmp_path / "out.csv")])
    assert result.exit_code == 1, result.output  # two invalid rows
    job = result.output.split("job ", 1)[1].split(":", 1)[0]
    fetched = CliRunner().invoke(main, ["bulk", "fetch", job, "--out", str(tmp_path / "out.jsonl")])
    assert fetched.exit_code == 0, fetched.output
    with (tmp_path / "out.csv").open() as out:
        rows = list(csv.DictReader(out))
    as_json = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    # Then every conversation is scored exactly as score_lead scores it, and its row carries the
    # features score_lead derived (a JSON object in its CSV cell, an object in JSON lines)
    for lead, row, json_row in zip(leads, rows, as_json):
        single = score_lead.delay(lead).get(timeout=10)
        assert float(row["probability"]) == json_row["probability"] == single["probability"]
        assert json.loads(row["features"]) == json_row["features"] == single["features"]
    # the lead given as features has nothing derived, the bad lines have their errors
    assert rows[-3]["features"] == "" and as_json[-3]["features"] is None and as_json[-3]["probability"]
    assert as_json[-2]["problems"] == [{"field": "row", "problem": "not valid UTF-8"}]
    assert as_json[-1]["problems"] == [{"field": "row", "problem": "not a JSON value"}]
    assert all(row["error"] and not row["probability"] for row in rows[-2:])
    # and once the job is recorded, none of its keys holds what a lead wrote (inputs are deleted)
    r = redis.Redis.from_url(get_settings().result_backend)
    keys = list(r.scan_iter(match=f"leadscore:bulk:{{{job}}}:*"))
    assert keys
    for key in keys:
        kind = r.type(key)
        dump = r.hgetall(key) if kind == b"hash" else r.lrange(key, 0, -1) if kind == b"list" else r.get(key) if kind == b"string" else b""
        assert SECRET.encode() not in repr(dump).encode(), key


def test_an_escalated_conversation_reaches_the_deep_tier_as_its_derived_features(worker: Path) -> None:
    # given synthetic conversations, one of which the model is unsure about (escalated)
    leads, _ = conversations(40, seed=77)
    for lead in leads:
        lead["id"] = "ctx-deep-" + lead["id"]
        lead["context"]["messages"][-1]["text"] += f" {SECRET}"
    results = predict_batch.delay(leads).get(timeout=20)
    lead = next(lead for lead, r in zip(leads, results) if r["escalated"])
    # when it is scored alone
    fast = score_lead.delay(lead).get(timeout=10)
    assert fast["escalated"] is True
    # then the deep tier's hand-off carries the derived features, each explained with its rule, no text
    r = redis.Redis.from_url(get_settings().cache_url)

    def handoffs() -> list[dict[str, Any]]:
        return [e for e in (decode(i, f) for i, f in r.xrange(stream_key(EventType.LEAD_HANDOFF))) if e["lead_id"] == lead["id"]]

    (event,) = poll(handoffs, timeout=30, what="the deep tier's hand-off of a conversation")
    handoff = event["handoff"]
    assert handoff["features"] == fast["features"]
    top = handoff["deep"]["explanation"]["top"]
    assert top and all(entry["rule"] for entry in top)
    assert SECRET not in json.dumps(event)
