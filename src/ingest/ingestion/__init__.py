"""The application service: getting documents in. Submitting (one path for the API,
the CLI and the scheduler), the ingest handler, discovery of files, maintenance,
and the actions a user takes on jobs and documents."""
