"""`ingest.client` against a real `ingest serve` subprocess: typed answers, typed
errors from problem+json, Retry-After honoured, chat streamed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.client import (
    AsyncClient,
    AuthError,
    BadRequestError,
    Client,
    ConflictError,
    NotFoundError,
    PayloadRejected,
    PermissionDenied,
    RateLimited,
    WaitTimedOut,
)
from ingest.models import HitOut, JobOut
from ingest.vocabulary import JobStatus
from tests.fixtures_docs import make_corrupt_pdf, make_md, make_txt, prose
from tests.support.server import Served, serve_inline

pytestmark = pytest.mark.slow

AXOLOTL = (
    "The axolotl hatchery at Quillonbrook keeps seventeen albino axolotls in "
    "chilled limestone tanks, fed on bloodworms every Thursday."
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_inline(tmp_path_factory.mktemp("client-server")) as server:
        yield server


@pytest.fixture
def editor(served: Served) -> Iterator[Client]:
    with Client(served.url, served.key("editor")) as client:
        yield client


def test_upload_wait_search_and_read_back(editor: Client, tmp_path: Path) -> None:
    good = make_md(tmp_path, "axolotls.md", f"# Axolotl care\n\n{AXOLOTL}\n\n{prose(80, 7)}")
    other = make_txt(tmp_path, "notes.txt", prose(120, 8))
    broken = make_corrupt_pdf(tmp_path, "broken.pdf")

    queued = editor.upload([good, other, broken], collection="client", metadata={"team": "qa"})
    assert [q.filename for q in queued] == ["axolotls.md", "notes.txt", "broken.pdf"]
    assert {q.status for q in queued} == {JobStatus.QUEUED}

    updates: list[JobOut] = []
    finished = editor.wait([q.job_id for q in queued], progress=updates.append, timeout=240)
    assert [j.job_id for j in finished] == [q.job_id for q in queued]
    assert [j.status for j in finished] == ["succeeded", "succeeded", "failed"]
    assert finished[2].error is not None
    assert finished[2].error["message"]
    assert all(isinstance(u, JobOut) for u in updates)
    assert len(updates) >= 3

    hits = editor.search("albino axolotls limestone tanks Quillonbrook", k=3, collection="client")
    assert hits
    assert isinstance(hits[0], HitOut)
    assert hits[0].source.endswith("axolotls.md")
    assert "Quillonbrook" in hits[0].text
    assert hits[0].metadata["team"] == "qa"

    document = editor.documents.get(queued[0].document_id)
    assert document.status == "ready"
    assert document.chunk_count >= 1
    page = editor.documents.list(collection="client")
    assert page.total == 3
    chunks = editor.documents.chunks(queued[0].document_id)
    assert any("axolotl" in c.text for c in chunks)
    assert queued[0].job_id in {j.job_id for j in editor.jobs.list(status=["succeeded"])}

    retried = editor.jobs.retry(queued[2].job_id)
    assert retried.status == "queued"
    editor.documents.delete(queued[1].document_id)
    with pytest.raises(NotFoundError):
        editor.documents.get(queued[1].document_id)


def test_problems_become_typed_exceptions(served: Served, editor: Client, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as missing:
        editor.jobs.get("no-such-job")
    assert missing.value.status == 404
    assert missing.value.type == "urn:ingest:problem:not-found"
    assert missing.value.title
    assert missing.value.detail

    with Client(served.url, "ingk_not_a_key") as stranger, pytest.raises(AuthError) as auth:
        stranger.jobs.list()
    assert auth.value.status == 401
    assert auth.value.slug == "invalid-credentials"

    with Client(served.url, served.key("viewer")) as viewer:
        with pytest.raises(PermissionDenied) as denied:
            viewer.upload([make_txt(tmp_path, "a.txt", prose(30, 1))])
        assert denied.value.status == 403
        assert denied.value.slug == "forbidden"
        assert viewer.health().status == "ok"

    with pytest.raises(BadRequestError) as invalid:
        editor.search("anything", k=0)
    assert invalid.value.status == 422
    assert [e["field"] for e in invalid.value.problem["errors"]] == ["k"]

    fine, exe = make_txt(tmp_path, "fine.txt", prose(20, 4)), _exe(tmp_path)
    with pytest.raises(PayloadRejected) as refused:
        editor.upload([fine, exe])
    assert refused.value.status == 415
    assert fine.name not in {j.message for j in editor.jobs.list()}

    queued = editor.upload([make_txt(tmp_path, "done.txt", prose(40, 2))])
    editor.wait([queued[0].job_id], timeout=240)
    with pytest.raises(ConflictError) as finished:
        editor.jobs.cancel(queued[0].job_id)
    assert finished.value.slug == "job-finished"


def _exe(directory: Path) -> Path:
    path = directory / "tool.exe"
    path.write_bytes(b"MZ\x90\x00")
    return path


def test_chat_streams_tokens_then_the_answer_with_citations(editor: Client, tmp_path: Path) -> None:
    doc = make_md(tmp_path, "hatchery.md", f"# Hatchery\n\n{AXOLOTL}\n\n{prose(40, 3)}")
    queued = editor.upload([doc], collection="chat")
    editor.wait([queued[0].job_id], timeout=240)

    stream = editor.ask("Where are the albino axolotls kept?", collection="chat")
    tokens = list(stream)
    assert len(tokens) > 1
    assert stream.answer is not None
    assert stream.answer.answer == "".join(tokens)
    assert any(c.source.endswith("hatchery.md") for c in stream.answer.citations)


def test_async_client_uploads_waits_and_searches(served: Served, tmp_path: Path) -> None:
    doc = make_txt(tmp_path, "pangolins.txt", "Pangolin sanctuary volunteers in Zarvenhollow. " * 5)

    async def scenario() -> list[HitOut]:
        async with AsyncClient(served.url, served.key("editor")) as client:
            queued = await client.upload([doc], collection="async")
            [job] = await client.wait([queued[0].job_id], timeout=240)
            assert job.status == "succeeded"
            assert (await client.jobs.get(job.job_id)).status == "succeeded"
            with pytest.raises(NotFoundError):
                await client.documents.get("nope")
            return await client.search("pangolin sanctuary Zarvenhollow", collection="async")

    hits = asyncio.run(scenario())
    assert hits[0].source.endswith("pangolins.txt")


def test_rate_limited_requests_wait_for_retry_after(tmp_path: Path) -> None:
    with serve_inline(tmp_path / "limited", INGEST_RATE_LIMIT="3 per 3 second") as served:
        key = served.key("viewer")
        with Client(served.url, key, max_retries=0) as impatient:
            hit = _first_refusal(impatient, requests=10)
        assert hit.status == 429
        assert hit.retry_after is not None
        assert 1 <= hit.retry_after <= 3

        with Client(served.url, key, max_retries=5) as patient:
            answers = [patient.jobs.list() for _ in range(8)]
        assert len(answers) == 8

        # wait() reads each unfinished job, so it meets the limit too: it waits out
        # each Retry-After, reports progress, and ends when every job is final...
        files = [make_txt(tmp_path / "docs", f"limited-{i}.txt", prose(20, i)) for i in range(3)]
        with Client(served.url, served.key("editor"), max_retries=10) as editor:
            ids = [q.job_id for q in editor.upload(files, collection="limited")]
            seen: list[JobOut] = []
            done = editor.wait(ids, progress=seen.append, timeout=120)
            assert [j.job_id for j in done] == ids
            assert {j.status for j in done} == {JobStatus.SUCCEEDED}
            assert {j.job_id for j in seen if j.status == JobStatus.SUCCEEDED} == set(ids)

            # ...but never past its timeout: a Retry-After beyond it ends the wait.
            with Client(served.url, served.key("editor"), max_retries=0) as impatient:
                _first_refusal(impatient, requests=10)
            with pytest.raises(WaitTimedOut):
                editor.wait(ids, timeout=0.5)


def _first_refusal(client: Client, requests: int) -> RateLimited:
    for _ in range(requests):
        try:
            client.jobs.list()
        except RateLimited as refused:
            return refused
    raise AssertionError(f"{requests} requests in a row were all allowed")
