"""The operator console (/console) in-process: sign-in turns a key into a signed
session cookie, every form needs the session's CSRF token, roles hold (a viewer sees
no write controls and a forged POST is 403 and audited), sign-out ends the session."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ingest.settings import Settings
from ingest.store import NewJob
from ingest.vocabulary import JobStatus
from tests.conftest import CountingEmbedder
from tests.fixtures_docs import make_md, prose
from tests.support.api import Api, api_settings, running_api

WRITE_CONTROLS = ("Retry</button>", "Cancel</button>", "Requeue", "/console/upload", "Delete")


@pytest.fixture
def api(settings: Settings, embedder: CountingEmbedder) -> Iterator[Api]:
    with running_api(api_settings(settings), embedder) as running:
        yield running


def sign_in(api: Api, role: str) -> str:
    """Sign in as `role`; the CSRF token of the session."""
    api.client.cookies.clear()
    response = api.client.post(
        "/console/signin",
        data={"api_key": api.keys[role], "next": "/console"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/console"
    page = api.client.get("/console")
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert found
    return found.group(1)


def upload_one(api: Api, tmp_path: Path, csrf: str) -> dict[str, str]:
    doc = make_md(
        tmp_path, "otters.md", f"# Otters\n\nRiver otters of Brindlecombe.\n\n{prose(40, 1)}"
    )
    response = api.client.post(
        "/console/upload",
        files=[("files", (doc.name, doc.read_bytes(), "text/markdown"))],
        data={"collection": "console"},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 200, response.text
    queued: dict[str, str] = response.json()["jobs"][0]
    return queued


def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_it(api: Api) -> None:
    api.client.cookies.clear()
    wrong = api.client.post("/console/signin", data={"api_key": "ingk_wrong"})
    assert wrong.status_code == 401
    assert "unknown or revoked" in wrong.text

    response = api.client.post(
        "/console/signin", data={"api_key": api.keys["viewer"]}, follow_redirects=False
    )
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "max-age=28800" in cookie
    assert "secure" not in cookie  # plain HTTP here; behind TLS it is Secure
    page = api.client.get("/console")
    assert "Overview" in page.text
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert csrf

    assert api.client.post("/console/signout", follow_redirects=False).status_code == 403
    out = api.client.post("/console/signout", data={"csrf": csrf.group(1)}, follow_redirects=False)
    assert out.status_code == 303
    after = api.client.get("/console/jobs", follow_redirects=False)
    assert after.status_code == 303
    assert after.headers["location"].startswith("/console/signin")


def test_a_revoked_key_ends_its_session_and_tls_makes_the_cookie_secure(api: Api) -> None:
    secret, key = api.ctx.store.access.create_key("viewer", "short-lived")
    api.client.cookies.clear()
    signed = api.client.post(
        "/console/signin",
        data={"api_key": secret},
        headers={"X-Forwarded-Proto": "https"},
        follow_redirects=False,
    )
    assert "secure" in signed.headers["set-cookie"].lower()
    api.client.cookies.clear()
    api.client.post("/console/signin", data={"api_key": secret}, follow_redirects=False)
    assert api.client.get("/console", follow_redirects=False).status_code == 200
    api.ctx.store.access.revoke(key.id)
    assert api.client.get("/console", follow_redirects=False).status_code == 303


def test_a_viewer_sees_no_write_controls_and_a_forged_post_is_refused_and_audited(
    api: Api, tmp_path: Path
) -> None:
    editor_csrf = sign_in(api, "editor")
    queued = upload_one(api, tmp_path, editor_csrf)
    job_id, document_id = queued["job_id"], queued["document_id"]
    editor_page = api.client.get(f"/console/jobs/{job_id}").text
    assert "Retry</button>" in editor_page
    assert "Cancel</button>" in editor_page

    viewer_csrf = sign_in(api, "viewer")
    for url in (
        "/console",
        f"/console/jobs/{job_id}",
        "/console/dead",
        f"/console/documents/{document_id}",
    ):
        page = api.client.get(url)
        assert page.status_code == 200, url
        shown = [c for c in WRITE_CONTROLS if c in page.text]
        assert not shown, (url, shown)
    assert api.client.get("/console/upload").status_code == 403

    forged = api.client.post(f"/console/documents/{document_id}/delete", data={"csrf": viewer_csrf})
    assert forged.status_code == 403
    assert api.get(f"/api/v1/documents/{document_id}").status_code == 200
    entries = api.get("/api/v1/audit").json()["entries"]
    refused = [e for e in entries if e["action"] == "POST /console/documents/{document_id}/delete"]
    assert refused
    assert refused[0]["outcome"] == "denied"
    assert refused[0]["status_code"] == 403
    assert refused[0]["target"] == document_id
    assert api.keys["viewer"][:8] not in (refused[0]["actor"] or "")  # never the secret


def test_state_changes_need_the_sessions_csrf_token(api: Api, tmp_path: Path) -> None:
    csrf = sign_in(api, "editor")
    queued = upload_one(api, tmp_path, csrf)
    api.wait_job(queued["job_id"])
    url = f"/console/documents/{queued['document_id']}/delete"

    missing = api.client.post(url)
    stale = api.client.post(url, data={"csrf": "not-the-token"})
    assert missing.status_code == 403
    assert stale.status_code == 403
    assert api.get(f"/api/v1/documents/{queued['document_id']}").status_code == 200

    done = api.client.post(url, data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert api.get(f"/api/v1/documents/{queued['document_id']}").status_code == 404


def test_search_page_shows_hits_with_query_words_highlighted(api: Api, tmp_path: Path) -> None:
    csrf = sign_in(api, "editor")
    api.wait_job(upload_one(api, tmp_path, csrf)["job_id"])
    page = api.client.get(
        "/console/search", params={"q": "otters Brindlecombe", "collection": "console"}
    )
    assert page.status_code == 200
    assert "otters.md" in page.text
    assert "<mark>Brindlecombe</mark>" in page.text
    assert "<mark>otters</mark>" in page.text.lower() or "<mark>Otters</mark>" in page.text


def test_admin_creates_a_key_shown_once_and_revokes_it(api: Api) -> None:
    csrf = sign_in(api, "admin")
    created = api.client.post(
        "/console/admin/keys", data={"csrf": csrf, "name": "ci", "role": "viewer"}
    )
    assert created.status_code == 200
    secret = re.search(r'<code id="new-key">(ingk_[^<]+)</code>', created.text)
    assert secret
    assert api.client.get("/console/admin/keys").text.count(secret.group(1)) == 0
    key = next(k for k in api.ctx.store.access.list_keys() if k.name == "ci")
    revoked = api.client.post(f"/console/admin/keys/{key.id}/revoke", data={"csrf": csrf})
    assert revoked.status_code == 200
    assert api.ctx.store.access.lookup(secret.group(1)) is None
    assert "POST /console/admin/keys" in api.client.get("/console/admin/audit").text


# --- dead letters and the live jobs list ---------------------------------------------

BY_HAND = "by-hand"  # a queue the app's inline worker does not take


def dead_letters(api: Api, n: int) -> list[str]:
    ledger = api.ctx.ledger
    ids = []
    for _ in range(n):
        ledger.submit(NewJob(kind="noop", payload={}, queue=BY_HAND, max_attempts=1))
        claim = ledger.claim_many("console-test", [BY_HAND], 600, 1)[0]
        assert ledger.end_attempt(claim, JobStatus.DEAD, error_type="Boom", error_message="boom")
        ids.append(claim.job.id)
    return ids


class FormFields(HTMLParser):
    """Which form each `job_id` field and button of a page belongs to, as a browser
    decides it: the `form` attribute, else the enclosing <form>."""

    def __init__(self) -> None:
        super().__init__()
        self.current: str | None = None
        self.count = 0
        self.fields: list[tuple[str, str, str]] = []  # (form, tag/type, value)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.count += 1
            self.current = a.get("id") or f"form-{self.count}"
        elif tag in ("input", "button") and a.get("name") == "job_id":
            owner = a.get("form") or self.current or "none"
            self.fields.append((owner, a.get("type") or tag, a.get("value") or ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.current = None


def test_one_dead_letters_requeue_sends_that_job_only_and_bulk_sends_the_ticked(
    api: Api,
) -> None:
    ids = dead_letters(api, 3)
    csrf = sign_in(api, "editor")
    parsed = FormFields()
    parsed.feed(api.client.get("/console/dead").text)
    boxes = [(form, value) for form, kind, value in parsed.fields if kind == "checkbox"]
    singles = [(form, value) for form, kind, value in parsed.fields if kind != "checkbox"]
    assert sorted(v for _, v in boxes) == sorted(ids)
    bulk_forms = {form for form, _ in boxes}
    assert len(bulk_forms) == 1
    # Every row's button submits a form holding that row's job and nothing else.
    assert sorted(v for _, v in singles) == sorted(ids)
    per_form = Counter(form for form, _ in singles)
    assert set(per_form.values()) == {1}
    assert not bulk_forms & set(per_form)

    def status(job_id: str) -> str:
        job = api.ctx.ledger.get(job_id)
        assert job is not None
        return str(job.status)

    assert api.client.post("/console/dead/requeue", data={"job_id": ids[0]}).status_code == 403
    one = api.client.post(
        "/console/dead/requeue", data={"csrf": csrf, "job_id": ids[0]}, follow_redirects=False
    )
    assert one.status_code == 303
    assert [status(j) for j in ids] == ["queued", "dead", "dead"]
    bulk = api.client.post("/console/dead/requeue", data={"csrf": csrf, "job_id": ids[1:]})
    assert bulk.status_code == 200
    assert [status(j) for j in ids] == ["queued", "queued", "queued"]


def test_the_jobs_list_refreshes_its_rows_from_a_fragment_with_the_same_filters(
    api: Api,
) -> None:
    (job_id,) = dead_letters(api, 1)
    sign_in(api, "viewer")
    page = api.client.get("/console/jobs", params={"status": "dead", "queue": BY_HAND}).text
    found = re.search(r'id="job-rows" data-refresh="([^"]+)"', page)
    assert found
    refresh = found.group(1).replace("&amp;", "&")
    assert "status=dead" in refresh
    assert f"queue={BY_HAND}" in refresh
    rows = api.client.get(refresh)
    assert rows.status_code == 200
    assert "<html" not in rows.text
    assert job_id[:12] in rows.text
    assert "status-dead" in rows.text

    api.ctx.ledger.retry(job_id)
    assert "no jobs" in api.client.get(refresh).text  # queued now: out of this filter
