"""Jobs carry the request id of the work that deferred them, and the worker counts them.

Deferring through `defer_job` adds the current request id to the job's arguments; the
worker middleware `observe_job` takes it out again before the task runs and makes it the
id of every line the job logs (and of the jobs it defers in turn). A job nobody deferred
with an id, such as a periodic one, gets an id of its own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from procrastinate.exceptions import JobAborted

from carsearch.observability.logging import REQUEST_ID_ARGUMENT, request_id_var
from carsearch.observability.metrics import JOBS


class Deferrable(Protocol):
    """A procrastinate task, or a task configured for one defer (`configure(...)`)."""

    @property
    def defer_async(self) -> Callable[..., Awaitable[int]]: ...


async def defer_job(task: Deferrable, /, **task_kwargs: Any) -> int:
    """Defer `task` with these arguments, carrying the current request id along."""
    request_id = request_id_var.get()
    if request_id is not None:
        task_kwargs[REQUEST_ID_ARGUMENT] = request_id
    return await task.defer_async(**task_kwargs)


async def observe_job(call_next: Callable[[], Awaitable[Any]], context: Any, worker: Any) -> Any:
    """Worker middleware: the job's request id in context, its outcome counted.

    The id is set in the job's own asyncio task, not reset: procrastinate's line about how
    the job ended is logged after this returns and carries it too.
    """
    job = context.job
    # The task must not receive it: it is no argument of theirs.
    carried = job.task_kwargs.pop(REQUEST_ID_ARGUMENT, None)
    request_id_var.set(carried if isinstance(carried, str) and carried else uuid.uuid4().hex)
    try:
        result = await call_next()
    except (asyncio.CancelledError, JobAborted):
        raise  # stopped (a shutdown, an operator's abort), not failed
    except BaseException:
        JOBS.labels(job.queue, job.task_name, "failed").inc()
        raise
    JOBS.labels(job.queue, job.task_name, "succeeded").inc()
    return result
