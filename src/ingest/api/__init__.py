"""The HTTP API under /api/v1: thin routes that validate, call services, map errors."""
