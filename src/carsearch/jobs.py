"""The procrastinate app: every domain's task blueprint, and the periodic schedules.

Jobs live in PostgreSQL, so workers on several machines share one queue with no extra
server. Every worker of the app runs `observe_job` around each job: the job logs with the
request id of whatever deferred it (see `carsearch.observability.jobs.defer_job`), and
its outcome is counted.
"""

from __future__ import annotations

import procrastinate
from procrastinate import Blueprint, JobContext, PsycopgConnector

from carsearch.appraisal.tasks import appraisal_jobs
from carsearch.chat.tasks import chat_jobs
from carsearch.ingest.tasks import ingest_jobs, register_schedules
from carsearch.observability.jobs import observe_job
from carsearch.observability.metrics import JOBS
from carsearch.search.tasks import search_jobs
from carsearch.users.tasks import user_jobs

FINISHED_JOBS_KEPT_HOURS = 7 * 24

queue_maintenance = Blueprint()


@queue_maintenance.periodic(cron="17 3 * * *")
@queue_maintenance.task(queue="maintenance", pass_context=True)
async def purge_finished_jobs(context: JobContext, timestamp: int) -> None:
    """Delete jobs that succeeded more than a week ago; failed ones stay for inspection."""
    await context.app.job_manager.delete_old_jobs(nb_hours=FINISHED_JOBS_KEPT_HOURS)


# Every domain's jobs, by the namespace their task names get.
BLUEPRINTS: dict[str, Blueprint] = {
    "maintenance": queue_maintenance,
    "search": search_jobs,
    "ingest": ingest_jobs,
    "users": user_jobs,
    "chat": chat_jobs,
    "appraisal": appraisal_jobs,
}

_tasks: procrastinate.App | None = None


def create_job_app(dsn: str) -> procrastinate.App:
    """The job app on `dsn`. Blueprints can join one app per process (joining renames
    their tasks, and each task keeps a link to its app), so there is one app per process:
    a later call points it at `dsn` (a worker or the API makes one call; tests make
    several, one after another)."""
    global _tasks
    connector = PsycopgConnector(conninfo=dsn, min_size=1, max_size=4)
    if _tasks is not None:
        _tasks.connector = connector
        _tasks.job_manager.connector = connector
        return _tasks
    app = procrastinate.App(
        connector=connector, worker_defaults={"worker_middleware": [observe_job]}
    )
    for namespace, blueprint in BLUEPRINTS.items():
        app.add_tasks_from(blueprint, namespace=namespace)
    register_schedules(app)
    for task in app.tasks.values():
        # Every task's outcomes start at zero, so that failure rates exist before a failure.
        for outcome in ("succeeded", "failed"):
            JOBS.labels(task.queue, task.name, outcome)
    _tasks = app
    return app


def known_queues() -> frozenset[str]:
    """Every queue a task of ours runs on."""
    return frozenset(
        task.queue for blueprint in BLUEPRINTS.values() for task in blueprint.tasks.values()
    )
