"""The procrastinate app: every domain's task blueprint, and the periodic schedules.

Jobs live in PostgreSQL, so workers on several machines share one queue with no extra
server.
"""

from __future__ import annotations

import procrastinate
from procrastinate import Blueprint, JobContext, PsycopgConnector

from carsearch.chat.tasks import chat_jobs
from carsearch.ingest.tasks import ingest_jobs, register_schedules
from carsearch.search.tasks import search_jobs
from carsearch.users.tasks import user_jobs

FINISHED_JOBS_KEPT_HOURS = 7 * 24

queue_maintenance = Blueprint()


@queue_maintenance.periodic(cron="17 3 * * *")
@queue_maintenance.task(queue="maintenance", pass_context=True)
async def purge_finished_jobs(context: JobContext, timestamp: int) -> None:
    """Delete jobs that succeeded more than a week ago; failed ones stay for inspection."""
    await context.app.job_manager.delete_old_jobs(nb_hours=FINISHED_JOBS_KEPT_HOURS)


_tasks: procrastinate.App | None = None


def create_job_app(dsn: str) -> procrastinate.App:
    """The job app on `dsn`. Blueprints can join one app per process (joining renames
    their tasks), so the tasks are gathered once and later apps share them."""
    global _tasks
    connector = PsycopgConnector(conninfo=dsn, min_size=1, max_size=4)
    if _tasks is not None:
        return _tasks.with_connector(connector)
    app = procrastinate.App(connector=connector)
    app.add_tasks_from(queue_maintenance, namespace="maintenance")
    app.add_tasks_from(search_jobs, namespace="search")
    app.add_tasks_from(ingest_jobs, namespace="ingest")
    app.add_tasks_from(user_jobs, namespace="users")
    app.add_tasks_from(chat_jobs, namespace="chat")
    register_schedules(app)
    _tasks = app
    return app
