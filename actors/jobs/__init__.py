"""Job bodies, one module per job family. Each module exports `JOBS: list[JobSpec]`."""
