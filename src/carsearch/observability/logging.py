"""Structured logs: one JSON object per line, with the request id of the work in progress."""

from __future__ import annotations

import logging
import logging.config
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# The job argument that carries the id of the request (or job) that deferred a job; the
# worker takes it out before the task runs (observability/jobs.py).
REQUEST_ID_ARGUMENT = "_request_id"

# Attributes every LogRecord has; anything else passed with `extra=` goes into the JSON.
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get() or _carried_request_id(record)
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def _carried_request_id(record: logging.LogRecord) -> str | None:
    """The request id a job carries, from the job procrastinate logs about: its lines
    before the job's own code runs ("Starting job") have no id in context yet."""
    job = getattr(record, "job", None)
    arguments = job.get("task_kwargs") if isinstance(job, dict) else None
    value = arguments.get(REQUEST_ID_ARGUMENT) if isinstance(arguments, dict) else None
    return value if isinstance(value, str) else None


def logging_config(level: str = "info") -> dict[str, Any]:
    """JSON lines on stderr, as a dictConfig; uvicorn applies it in each worker process."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "json",
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            # Replaced by ours: one line per request, with its id.
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }


def configure_logging(level: str = "info") -> None:
    logging.config.dictConfig(logging_config(level))
