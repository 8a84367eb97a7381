"""What the routes use, built once per API process."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from prometheus_client import CollectorRegistry, Histogram

from ingest.api.ratelimit import RateLimits
from ingest.context import Context
from ingest.query.memory import ConversationMemory
from ingest.store.access import Access


@dataclass
class Services:
    ctx: Context
    access: Access
    rate_limits: RateLimits
    memory: ConversationMemory
    metrics_registry: CollectorRegistry
    http_latency: Histogram


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
