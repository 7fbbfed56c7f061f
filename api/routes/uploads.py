"""The upload routes: accept images for ingest as a durable job, and the jobs' status."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, File, Query, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from api.deps import (
    JobId,
    LibraryDep,
    job_json,
    read_uploads,
    require_key,
)
from engine.library import Library


def add_upload_routes(app: FastAPI, library: Library) -> None:
    """Uploads and their jobs."""

    @app.post("/api/images", status_code=202, dependencies=[Depends(require_key)])
    async def upload_images(
        lib: LibraryDep,
        files: Annotated[list[UploadFile], File()],
        response: Response,
        wait: Annotated[bool, Query(description="answer when the job is done (200), not at once")] = False,
    ) -> dict:
        """Accept images for ingest: 202 with the job (status URL in `Location`) once every file is
        stored durably; ingest runs in the background, one job at a time. Files that are not images
        fail at once. `wait=true` answers when the job is done, with each file's result."""
        contents = await read_uploads(files, lib.settings)
        lib.jobs.start()
        job = await run_in_threadpool(lib.jobs.submit, contents)
        if wait:
            job = await run_in_threadpool(lib.jobs.wait, job.id)
            response.status_code = 200
        response.headers["Location"] = f"/api/jobs/{job.id}"
        return job_json(job)

    @app.get("/api/jobs")
    def list_jobs(lib: LibraryDep, limit: Annotated[int, Query(ge=1, le=200)] = 20) -> dict:
        """The most recent upload jobs, newest first."""
        return {"jobs": [job_json(job) for job in lib.jobs.list()[:limit]]}

    @app.get("/api/jobs/{job_id}")
    def job_status(lib: LibraryDep, job_id: JobId) -> dict:
        """One upload job: status (queued, running, done, interrupted), progress, counts, and each
        file's result (ingested, unchanged, failed with the reason, cancelled, or pending)."""
        return job_json(lib.jobs.get(job_id))
