"""The interface models: importable without FastAPI, and the job object's JSON is
byte for byte what the CLI printed before the models existed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ingest.errors import InvalidInput
from ingest.jobs.views import job_view
from ingest.models import MAX_METADATA_DEPTH, parse_metadata
from ingest.store import Job

JOB = Job(
    id="0123456789abcdef0123456789abcdef",
    kind="ingest",
    queue="ingest",
    priority=5,
    status="failed",
    attempt=2,
    max_attempts=3,
    not_before=1700000000.5,
    lease_owner=None,
    lease_expires_at=None,
    progress=0.55,
    progress_current=24,
    progress_total=48,
    progress_message="embedded 24/48 chunks",
    stage="embed",
    stages=[
        {
            "stage": "parse",
            "started_at": 1700000000.125,
            "ended_at": 1700000001.0,
            "current": 1,
            "total": 1,
        }
    ],
    payload={"staged": "x"},
    result={"source": "upload://c/a.pdf", "outcome": "failed", "chunks": 0},
    error_type="rejected",
    error_message="not a PDF",
    error_traceback=None,
    cancel_requested=False,
    idempotency_key=None,
    document_id="fedcba9876543210fedcba9876543210",
    created_at=1700000000.0,
    started_at=1700000000.25,
    finished_at=1700000002.0,
    updated_at=1700000002.0,
)
# What `ingest jobs ... --json` printed for JOB before the typed models (jobs/views.py).
BEFORE = (
    '{"job_id": "0123456789abcdef0123456789abcdef", "kind": "ingest", "queue": "ingest", '
    '"priority": 5, "status": "failed", "progress": 0.55, "current": 24, "total": 48, '
    '"stage": "embed", "message": "embedded 24/48 chunks", "attempt": 2, "max_attempts": 3, '
    '"cancel_requested": false, "document_id": "fedcba9876543210fedcba9876543210", '
    '"idempotency_key": null, "result": {"source": "upload://c/a.pdf", "outcome": "failed", '
    '"chunks": 0}, "error": {"type": "rejected", "message": "not a PDF"%s}, "stages": '
    '[{"stage": "parse", "started_at": 1700000000.125, "ended_at": 1700000001.0, '
    '"current": 1, "total": 1}], "created_at": "2023-11-14T22:13:20+00:00", '
    '"started_at": "2023-11-14T22:13:20.250000+00:00", '
    '"finished_at": "2023-11-14T22:13:22+00:00", "updated_at": "2023-11-14T22:13:22+00:00", '
    '"not_before": "2023-11-14T22:13:20.500000+00:00"}'
)


def test_the_job_object_json_is_unchanged() -> None:
    # Non-admins never see a traceback key; `jobs show` and admins see it, null or not.
    assert json.dumps(job_view(JOB), ensure_ascii=False) == BEFORE % ""
    with_traceback = json.dumps(job_view(JOB, include_traceback=True), ensure_ascii=False)
    assert with_traceback == BEFORE % ', "traceback": null'


def test_the_models_import_without_fastapi_or_a_database_driver() -> None:
    code = (
        "import sys, ingest.models; "
        "loaded = [m for m in ('fastapi', 'starlette', 'sqlalchemy') if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"a": NaN}', "metadata"),
        ('{"a": [1, {"b": 1e999}]}', "metadata.a.1.b"),
        ('{"a": "x\\u0000"}', "metadata.a"),
        ('{"filename": "x"}', "metadata.filename"),
        ('{"code_language": "x"}', "metadata.code_language"),
        ("[1]", "metadata"),
        ('{"a": ' + "[" * MAX_METADATA_DEPTH + "]" * MAX_METADATA_DEPTH + "}", "metadata"),
        ("[" * 100_000 + "]" * 100_000, "metadata"),
    ],
)
def test_metadata_a_backend_cannot_store_is_refused(raw: str, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_metadata(raw)
    assert refused.value.field == field


def test_metadata_within_the_limits_is_kept() -> None:
    deepest = '{"a": ' + "[" * (MAX_METADATA_DEPTH - 1) + "]" * (MAX_METADATA_DEPTH - 1) + "}"
    assert parse_metadata(deepest) == {"a": json.loads(deepest)["a"]}
    nested = '{"x": {"filename": "ok", "s": "[{\\"brackets in strings\\""}}'
    assert parse_metadata(nested) == json.loads(nested)
    assert parse_metadata(None) == {}
