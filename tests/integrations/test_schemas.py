"""docs/schemas: the published JSON Schemas are what the code generates (regenerate with
`python -m reconciler.schemas`), and what the code really emits, plan files and apply events,
validates against them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from reconciler import schemas
from tests.day2.helpers import Sandbox
from tests.e2e.helpers import xks_manifest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "schemas"


def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((DOCS / name).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.mark.parametrize("name", sorted(schemas.SCHEMAS))
def test_the_published_schema_is_what_the_code_generates(name: str):
    assert (DOCS / name).read_text() == schemas.render(schemas.SCHEMAS[name]), \
        f"docs/schemas/{name} is out of date: run python -m reconciler.schemas"


def test_a_field_the_plan_file_gains_appears_in_the_regenerated_schema(monkeypatch):
    """Generated from what Plan.to_dict emits: a new member (say, a fleet section) is picked up."""
    from reconciler.plan.model import Plan

    body = Plan.body
    monkeypatch.setattr(Plan, "body", lambda self: {**body(self), "fleet": [{"account": "1", "region": "r"}]})
    generated = schemas.plan_schema()
    assert generated["properties"]["fleet"]["items"]["properties"]["account"] == {"type": "string"}
    assert "fleet" in generated["required"]


@pytest.fixture
def sb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    for name in ("GITHUB_STEP_SUMMARY", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    return Sandbox(tmp_path)


def test_real_plan_files_and_apply_events_validate(sb: Sandbox):
    plans, events = _validator("plan.schema.json"), _validator("apply-event.schema.json")
    sb.write("m/payments.yaml", xks_manifest())
    seen: list[dict] = []

    def check_plan(out: str) -> dict:
        assert sb.run("plan", "--sandbox", "m", "--out", out).code == 2
        data = json.loads((sb.workdir / out).read_text())
        errors = [(list(e.absolute_path), e.message) for e in plans.iter_errors(data)]
        assert not errors, errors
        return data

    def check_apply(*args: str) -> int:
        run = sb.run("apply", "--sandbox", "--format", "json", "--journal", "journal.jsonl", *args)
        lines = [json.loads(line) for line in run.out.splitlines() if line.strip()]
        for event in lines:
            errors = [e.message for e in events.iter_errors(event)]
            assert not errors, (event, errors)
        seen.extend(lines)
        return run.code

    created = check_plan("plans/create.json")
    assert {s["action"] for s in created["steps"]} >= {"create_store", "connect_store", "create_key", "create_alias"}
    assert check_apply("plans/create.json") == 0
    sb.write("m/payments.yaml", xks_manifest(state="absent"))
    decommission = check_plan("plans/decommission.json")
    assert any(s["deferredUntil"] for s in decommission["steps"]) and any(s["destructive"] for s in decommission["steps"])
    assert check_apply("plans/decommission.json", "--allow-destroy") == 2

    kinds = {e["event"] for e in seen}
    assert {"run-start", "start", "ok", "deferred", "run-end"} <= kinds
    journal = [json.loads(line) for line in (sb.workdir / "journal.jsonl").read_text().splitlines()]
    assert journal and all(not list(events.iter_errors(e)) for e in journal)


def test_the_event_schema_refuses_what_the_code_does_not_emit():
    events = _validator("apply-event.schema.json")
    good = {"event": "ok", "time": "2030-01-01T00:00:00Z", "run": "abc", "step": "s:create_store",
            "action": "create_store", "store": "s", "key": None, "message": "created", "errorCode": None,
            "elapsed": 0.5, "deferredUntil": None}
    assert not list(events.iter_errors(good))
    assert list(events.iter_errors({**good, "secret": "x"}))  # a new field must be added to EVENTS
    assert list(events.iter_errors({**good, "event": "exploded"}))
