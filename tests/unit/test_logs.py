import json
import logging

import pytest

from ingest.logs import configure_logging, log_context
from ingest.settings import Settings


@pytest.fixture
def restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield None
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_the_job_or_request_they_belong_to(
    capsys: pytest.CaptureFixture[str], restore_logging: object
) -> None:
    configure_logging(Settings(log_format="json", log_level="info"))
    token = log_context.set({"job_id": "abc123"})
    try:
        logging.getLogger("ingest.jobs.worker").info("job %s finished", "abc123")
    finally:
        log_context.reset(token)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["job_id"] == "abc123"
    assert line["message"] == "job abc123 finished"
    assert line["level"] == "info"
    assert line["logger"] == "ingest.jobs.worker"


def test_plain_lines_show_the_request_id(
    capsys: pytest.CaptureFixture[str], restore_logging: object
) -> None:
    configure_logging(Settings(log_format="plain", log_level="info"))
    token = log_context.set({"request_id": "r-42"})
    try:
        logging.getLogger("ingest.api").info("GET /health/live 200")
    finally:
        log_context.reset(token)
    assert "request_id=r-42 GET /health/live 200" in capsys.readouterr().err
