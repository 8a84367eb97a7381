from ingest.api.ratelimit import RateLimits
from tests.support.processes import free_port


def test_limits_per_key_in_memory() -> None:
    limits = RateLimits(per_key="2/minute", auth_failures="1/minute", redis_url=None)
    assert limits.hit_key("k") is None
    assert limits.hit_key("k") is None
    wait = limits.hit_key("k")
    assert wait is not None
    assert 1 <= wait <= 60
    assert limits.hit_key("other") is None


def test_failed_auth_budget_per_key_prefix_and_ip() -> None:
    limits = RateLimits(per_key="10/minute", auth_failures="1/minute", redis_url=None)
    assert limits.hit_auth_failure("10.0.0.1", "ingk_bad") is None
    assert limits.hit_auth_failure("10.0.0.1", "ingk_bad") is not None
    assert limits.hit_auth_failure("10.0.0.1", "ingk_other") is None
    assert limits.hit_auth_failure("10.0.0.2", "ingk_bad") is None


def test_unreachable_redis_lets_requests_through() -> None:
    # Redis is a doorbell: its outage must not turn every API call into a 500.
    closed = f"redis://127.0.0.1:{free_port()}/0"
    limits = RateLimits(per_key="1/minute", auth_failures="1/minute", redis_url=closed)
    assert limits.hit_key("k") is None
    assert limits.hit_key("k") is None
    assert limits.hit_auth_failure("10.0.0.1", "ingk_bad") is None
