"""`python -m ingest.worker [--queues ingest,maintenance] [--concurrency N] [--burst]`"""

from ingest.cli.jobs_cmd import worker_main

if __name__ == "__main__":
    worker_main()
