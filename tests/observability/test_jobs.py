"""Jobs carry the request id of what deferred them; the worker middleware restores it and
counts each job's outcome. (A real worker running a deferred job: test_metrics.py.)"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY

from carsearch.jobs import create_job_app
from carsearch.observability.jobs import defer_job, observe_job
from carsearch.observability.logging import REQUEST_ID_ARGUMENT, request_id_var


class Recorder:
    def __init__(self) -> None:
        self.deferred: list[dict[str, Any]] = []

    async def defer_async(self, **task_kwargs: Any) -> int:
        self.deferred.append(task_kwargs)
        return len(self.deferred)


def job_context(**task_kwargs: Any) -> Any:
    job = SimpleNamespace(queue="testing", task_name="tests:a_task", task_kwargs=task_kwargs)
    return SimpleNamespace(job=job)


def jobs_counted(outcome: str) -> float:
    labels = {"queue": "testing", "task": "tests:a_task", "outcome": outcome}
    return REGISTRY.get_sample_value("carsearch_jobs_total", labels) or 0.0


async def test_a_job_deferred_during_a_request_carries_its_id() -> None:
    task = Recorder()
    token = request_id_var.set("req-123")
    try:
        await defer_job(task, listing_ids=["a"], run_id=1)
    finally:
        request_id_var.reset(token)
    await defer_job(task, run_id=2)  # outside any request: nothing to carry
    assert task.deferred == [
        {"listing_ids": ["a"], "run_id": 1, REQUEST_ID_ARGUMENT: "req-123"},
        {"run_id": 2},
    ]


async def test_the_job_runs_with_the_carried_id_and_never_sees_it_as_an_argument() -> None:
    context = job_context(run_id=1, **{REQUEST_ID_ARGUMENT: "req-123"})
    seen: dict[str, Any] = {}

    async def task() -> str:
        seen["arguments"] = dict(context.job.task_kwargs)
        seen["request_id"] = request_id_var.get()
        return "done"

    async def run() -> tuple[Any, str | None]:
        result = await observe_job(task, context, None)
        return result, request_id_var.get()  # still set for the worker's closing line

    succeeded = jobs_counted("succeeded")
    result, after = await asyncio.create_task(run())
    assert result == "done"
    assert seen == {"arguments": {"run_id": 1}, "request_id": "req-123"}
    assert after == "req-123"
    assert request_id_var.get() is None  # the job's own task only
    assert jobs_counted("succeeded") == succeeded + 1


async def test_a_job_nobody_deferred_with_an_id_gets_its_own() -> None:
    seen: list[str | None] = []

    async def task() -> None:
        seen.append(request_id_var.get())

    for _ in range(2):
        await asyncio.create_task(observe_job(task, job_context(timestamp=0), None))
    assert all(len(request_id or "") == 32 for request_id in seen)
    assert seen[0] != seen[1]


async def test_a_failed_job_is_counted_and_its_error_goes_on() -> None:
    async def task() -> None:
        raise RuntimeError("broken")

    failed = jobs_counted("failed")
    with pytest.raises(RuntimeError, match="broken"):
        await asyncio.create_task(observe_job(task, job_context(), None))
    assert jobs_counted("failed") == failed + 1


async def test_a_job_stopped_by_a_shutdown_is_not_counted_as_finished() -> None:
    async def task() -> None:
        raise asyncio.CancelledError

    counts = jobs_counted("succeeded"), jobs_counted("failed")
    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(observe_job(task, job_context(), None))
    assert (jobs_counted("succeeded"), jobs_counted("failed")) == counts


def test_every_worker_of_the_job_app_runs_the_middleware() -> None:
    app = create_job_app("postgresql://localhost/unused")
    assert app.worker_defaults["worker_middleware"] == [observe_job]
