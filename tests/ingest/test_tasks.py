"""The ingestion jobs are registered with the queue, on the schedule from settings."""

from __future__ import annotations

from carsearch.config import get_settings
from carsearch.jobs import create_job_app


def test_each_source_runs_on_its_cron_and_details_and_redecoding_are_jobs() -> None:
    app = create_job_app("postgresql://localhost/unused")
    assert {"ingest:scrape_carscom", "ingest:scrape_carscom_details"} <= set(app.tasks)
    schedules = {
        (task.task.name, task.cron) for task in app.periodic_registry.periodic_tasks.values()
    }
    assert ("ingest:scrape_carscom", get_settings().carscom_cron) in schedules
    assert ("ingest:redecode_offline_vins", "23 * * * *") in schedules
    scrape = app.tasks["ingest:scrape_carscom"]
    # One run per source at a time, and at most one waiting.
    assert scrape.lock == "scrape-carscom"
    assert scrape.queueing_lock == "scrape-carscom"
    assert app.tasks["ingest:scrape_carscom_details"].lock == "scrape-carscom"


def test_alerts_run_every_five_minutes_one_at_a_time() -> None:
    app = create_job_app("postgresql://localhost/unused")
    schedules = {
        (task.task.name, task.cron) for task in app.periodic_registry.periodic_tasks.values()
    }
    assert ("users:carsearch.users.tasks.send_alerts", "*/5 * * * *") in schedules
    assert app.tasks["users:carsearch.users.tasks.send_alerts"].lock == "alerts"
