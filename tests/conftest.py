"""Shared fixtures. Tests build their own data; nothing here reads ../shared."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from ingest.context import Context
from ingest.embedding import Vectors, build_embedder
from ingest.embedding.onnx_embedder import OnnxEmbedder
from ingest.settings import Settings
from ingest.store import Store
from tests.support.postgres import PostgresServer
from tests.support.s3 import S3Server


class CountingEmbedder:
    """The real embedder, with a count of the texts it was asked to embed."""

    def __init__(self, inner: OnnxEmbedder) -> None:
        self.inner = inner
        self.texts_embedded = 0

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dimensions(self) -> int:
        return self.inner.dimensions

    @property
    def tokenizer_path(self) -> Path:
        return self.inner.tokenizer_path

    @property
    def max_tokens(self) -> int:
        return self.inner.max_tokens

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.texts_embedded += len(texts)
        return self.inner.embed(texts)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        self.texts_embedded += len(texts)
        return self.inner.embed_queries(texts)

    def warm_up(self) -> None:
        self.inner.warm_up()  # not counted: no document's text


@pytest.fixture(scope="session")
def real_embedder() -> OnnxEmbedder:
    """The default offline embedder (all-MiniLM-L6-v2 on ONNX Runtime, as a user gets
    it with no settings), loaded once per test session."""
    embedder = build_embedder(Settings())
    assert isinstance(embedder, OnnxEmbedder)
    return embedder


@pytest.fixture
def embedder(real_embedder: OnnxEmbedder) -> CountingEmbedder:
    return CountingEmbedder(real_embedder)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL 16 + pgvector for the whole session. If it cannot start,
    the tests that need it fail loudly: a silent skip would hide a broken backend."""
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store and ledger test runs on both backends, on a fresh migrated database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ingest.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    store = Store.open(url)
    try:
        store.migrate()
    finally:
        store.close()
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # Parsing in-process: isolation has its own tests (tests/acceptance), and a parser
    # pool per test would cost seconds each.
    return Settings(
        database_url=database_url, incoming_dir=tmp_path / "incoming", isolate_parsing=False
    )


@pytest.fixture
def ctx(settings: Settings, embedder: CountingEmbedder) -> Iterator[Context]:
    context = Context(settings, embedder=embedder)
    yield context
    context.close()


def sqlite_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a fresh SQLite file and staging folder under `tmp_path`."""
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'ingest.db'}",
        incoming_dir=tmp_path / "incoming",
        **overrides,
    )


@pytest.fixture
def sqlite_ctx(tmp_path: Path, embedder: CountingEmbedder) -> Iterator[Context]:
    """A Context on a fresh SQLite file, parsing in this process: for tests about one
    backend's behaviour that need no parse child."""
    context = Context(sqlite_settings(tmp_path, isolate_parsing=False), embedder=embedder)
    yield context
    context.close()


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for running `ingest` as a subprocess against a fresh database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INGEST_", "DATABASE_URL"))}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.db'}"
    env["INGEST_INCOMING_DIR"] = str(tmp_path / "incoming")
    return env


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3-compatible server (moto's standalone server) for the whole session;
    each test makes its own bucket."""
    server = S3Server(tmp_path_factory.mktemp("s3"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the session's S3 server; the standard AWS variables point
    this process's S3 clients at it."""
    import boto3

    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    boto3.client("s3", endpoint_url=s3_server.endpoint_url).create_bucket(Bucket=bucket)
    return bucket
