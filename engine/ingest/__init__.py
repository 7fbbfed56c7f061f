"""Ingest: files -> triage (hash, skip what is stored) -> OCR and encoding on an executor (here, or a
Dask cluster) -> whole points; the pipeline record, per-image metadata files, usable OCR readers."""
