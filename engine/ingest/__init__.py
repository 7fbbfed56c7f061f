"""Ingest: files -> triage (hash, skip what is stored) -> OCR and encoding on an executor (here, or a
Dask cluster) -> whole points (ingestor.py runs the steps: triage.py, executors/, writer.py; run.py
what they share, report.py what the caller sees); the pipeline record, per-image metadata files,
usable OCR readers."""
