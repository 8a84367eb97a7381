"""Helpers shared by tests: real subprocesses (redis-server, ingest workers) and fakes."""
