"""Pure transformations: bytes -> text segments -> chunks, and the pipeline object
that names them in a fingerprint. No database, no HTTP, no settings. Parsing runs
in an isolated child process with limits (isolation.py)."""
