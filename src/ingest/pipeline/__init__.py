"""Pure transformations: bytes -> text segments -> chunks -> vectors. No database, no HTTP."""
