"""A fake OpenAI-compatible embeddings server speaking real HTTP.

The server is the stdlib ThreadingHTTPServer on 127.0.0.1 and a free port. It
answers POST /v1/embeddings the way OpenAI, TEI, vLLM and Ollama do, with
deterministic vectors: a signed, hashed bag of words in 64 dimensions, so texts
that share words get similar vectors. It records every request and can be told
to fail the next few requests (or every request) with a given status.

It runs in the test process; worker subprocesses reach it at `FakeOpenAI.url`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DIM = 64
API_KEY = "sk-test"
MODEL = "fake-embed"


def bag_of_words(text: str) -> list[float]:
    """Each word adds ±1 to one of DIM buckets, both picked by the word's hash."""
    vector = [0.0] * DIM
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        digest = hashlib.sha256(word.encode()).digest()
        vector[digest[0] % DIM] += 1.0 if digest[1] & 1 else -1.0
    return vector


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Failure:
    status: int
    message: str


@dataclass
class FakeState:
    api_key: str | None = API_KEY
    requests: list[Recorded] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    always: Failure | None = None  # when set, every request fails with it
    shuffle: bool = False
    drop_last_vector: bool = False
    sent_indexes: list[list[int]] = field(default_factory=list)
    raw_body: bytes | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Embedding requests with a text containing `held_word` wait until `released`.
    held_word: str | None = None
    released: threading.Event = field(default_factory=threading.Event)


class _Server(ThreadingHTTPServer):
    # Join handler threads on close, and track their sockets so stop() can cut
    # idle keep-alive connections: a stopped server must look dead to clients.
    daemon_threads = False
    block_on_close = True

    def __init__(self, state: FakeState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.connections_lock:
                self.connections.discard(request)

    def cut_connections(self) -> None:
        with self.connections_lock:
            for conn in self.connections:
                with contextlib.suppress(OSError):  # already closed by the client
                    conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real endpoints do
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def do_POST(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        with state.lock:
            state.requests.append(
                Recorded("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            failure = state.failures.pop(0) if state.failures else state.always

        if failure is not None:
            return self._error(failure.status, failure.message)
        if self.path == "/v1/chat/completions":
            return self._chat(body)
        if self.path != "/v1/embeddings":
            return self._error(404, f"no route for {self.path}")
        if state.api_key and self.headers.get("Authorization") != f"Bearer {state.api_key}":
            return self._error(401, "Incorrect API key provided", code="invalid_api_key")
        if not isinstance(body, dict) or "model" not in body or "input" not in body:
            return self._error(400, "body must be JSON with 'model' and 'input'")
        if state.raw_body is not None:
            return self._send(200, state.raw_body, content_type="text/html")

        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        word = state.held_word
        if word is not None and any(word in str(text) for text in inputs):
            state.released.wait(timeout=300)
        data: list[dict[str, Any]] = [
            {"object": "embedding", "index": i, "embedding": bag_of_words(text)}
            for i, text in enumerate(inputs)
        ]
        if state.drop_last_vector:
            data = data[:-1]
        if state.shuffle:
            random.Random(len(data)).shuffle(data)
        with state.lock:
            state.sent_indexes.append([item["index"] for item in data])
        tokens = sum(len(str(text).split()) for text in inputs)
        payload = {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        self._send(200, json.dumps(payload).encode())

    def _error(self, status: int, message: str, code: str | None = None) -> None:
        error = {"message": message, "type": "invalid_request_error", "code": code}
        self._send(status, json.dumps({"error": error}).encode())

    def _chat(self, body: Any) -> None:
        """A streamed chat completion, as OpenAI sends it: SSE `data:` chunks with
        `choices[0].delta.content`, then `data: [DONE]`. The reply names how many
        passages the system prompt carried, so a test can see they were sent."""
        if not isinstance(body, dict) or not body.get("stream") or "messages" not in body:
            return self._error(400, "body must be JSON with 'messages' and stream=true")
        system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
        passages = sum(1 for line in system.splitlines() if line.startswith("["))
        reply = f"From {passages} passages: the answer is forty two [1]."
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for word in reply.split(" "):
            chunk = {
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": word + " "}}],
            }
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True

    def _send(self, status: int, payload: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        if status == 429:
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(payload)


class FakeOpenAI:
    """The fake server, started in a background thread; stop() is idempotent."""

    def __init__(self) -> None:
        self.state = FakeState()
        self._server = _Server(self.state)
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self._stopped = False

    @property
    def requests(self) -> list[Recorded]:
        with self.state.lock:
            return list(self.state.requests)

    def fail_next(self, count: int, status: int, message: str = "server is busy") -> None:
        with self.state.lock:
            self.state.failures.extend(Failure(status, message) for _ in range(count))

    def fail_always(self, status: int, message: str = "server is busy") -> None:
        """Fail every request from now on, until heal()."""
        with self.state.lock:
            self.state.always = Failure(status, message)

    def hold(self, word: str) -> None:
        """Keep every embedding request for a text with `word` waiting until release():
        its job stays running (heartbeating) on a live worker meanwhile."""
        with self.state.lock:
            self.state.released.clear()
            self.state.held_word = word

    def release(self) -> None:
        self.state.released.set()

    def heal(self) -> None:
        """Answer normally again: forget pending and permanent failures."""
        with self.state.lock:
            self.state.failures.clear()
            self.state.always = None

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.release()
        self._server.shutdown()
        self._thread.join()
        self._server.cut_connections()
        self._server.server_close()  # also joins the handler threads
