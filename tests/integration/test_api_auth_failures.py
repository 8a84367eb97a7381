"""Failed authentication: limited per (key prefix, client address), audited, and
never a reason to refuse a valid key."""

from __future__ import annotations

from ingest.settings import Settings
from tests.conftest import CountingEmbedder
from tests.support.api import api_settings, assert_problem, running_api


def test_a_bad_key_is_limited_without_locking_out_good_keys(
    settings: Settings, embedder: CountingEmbedder
) -> None:
    limited = api_settings(settings, auth_failure_rate_limit="3/minute")
    with running_api(limited, embedder) as api:
        client = api.client
        stuck = {"Authorization": "Bearer ingk_revokedkey_0123456789"}
        for _ in range(3):
            assert_problem(
                client.get("/api/v1/documents", headers=stuck), 401, "invalid-credentials"
            )
        blocked = client.get("/api/v1/documents", headers=stuck)
        body = assert_problem(blocked, 429, "rate-limited")
        assert int(blocked.headers["retry-after"]) >= 1
        assert "with this key from this address" in body["detail"]

        # The same address, a valid key: served. Another bad key: its own budget.
        assert api.get("/api/v1/documents", "viewer").status_code == 200
        other = {"X-API-Key": "ingk_typo_key_9876543210"}
        assert_problem(client.get("/api/v1/documents", headers=other), 401, "invalid-credentials")

        entries = api.get("/api/v1/audit", params={"limit": 1000}).json()["entries"]
        refused = [e for e in entries if (e["actor"] or "").startswith("unknown key ")]
        assert [(e["actor"], e["status_code"]) for e in reversed(refused)] == [
            *[("unknown key ingk_revoked", 401)] * 3,
            ("unknown key ingk_revoked", 429),
            ("unknown key ingk_typo_ke", 401),
        ]
        assert {(e["action"], e["source_ip"], e["outcome"]) for e in refused} == {
            ("GET /api/v1/documents", "testclient", "denied")
        }
        # Only the prefix is kept, never the secret.
        assert not any("0123456789" in str(e) for e in entries)
