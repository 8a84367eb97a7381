"""The `ingest add` progress bar's text for the job in progress."""

from __future__ import annotations

from typing import Any

from ingest.cli.follow import running_label
from ingest.store.job_records import Job
from ingest.vocabulary import JobStatus


def job(**changes: Any) -> Job:
    fields: dict[str, Any] = {
        "id": "j1",
        "kind": "ingest",
        "queue": "ingest",
        "priority": 0,
        "status": JobStatus.RUNNING,
        "attempt": 1,
        "max_attempts": 3,
        "not_before": 0.0,
        "lease_owner": "w",
        "lease_expires_at": None,
        "progress": 0.4,
        "progress_current": 3,
        "progress_total": 10,
        "progress_message": None,
        "stage": "embed",
        "stages": [],
        "payload": {"filename": "scan.pdf"},
        "result": None,
        "error_type": None,
        "error_message": None,
        "error_traceback": None,
        "cancel_requested": False,
        "idempotency_key": None,
        "document_id": None,
        "created_at": 0.0,
        "started_at": 0.0,
        "finished_at": None,
        "updated_at": 0.0,
    }
    return Job(**{**fields, **changes})


def test_the_bar_names_the_file_stage_and_share_done() -> None:
    assert running_label(job(progress_message="embedded 3 of 10 chunks")) == "scan.pdf embed 40%"


def test_while_ocr_reads_a_scan_the_bar_shows_the_page() -> None:
    label = running_label(job(stage="ocr", progress_message="OCR page 3 of 10"))
    assert label == "scan.pdf OCR page 3 of 10 40%"
