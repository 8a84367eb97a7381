"""The durable job runtime: worker, execution, retry policy, scheduler, doorbell,
health. Generic: it knows nothing about documents (ingestion/ registers its kinds)."""
