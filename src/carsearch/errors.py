"""Domain errors. Each carries its HTTP status and error code; one handler renders them."""

from __future__ import annotations

from typing import Any


class CarSearchError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class BadRequest(CarSearchError):
    status_code = 400
    code = "bad_request"


class Unauthorized(CarSearchError):
    status_code = 401
    code = "unauthorized"


class Forbidden(CarSearchError):
    status_code = 403
    code = "forbidden"


class NotFound(CarSearchError):
    status_code = 404
    code = "not_found"


class Conflict(CarSearchError):
    status_code = 409
    code = "conflict"


class InvalidInput(CarSearchError):
    status_code = 422
    code = "validation_error"


class RateLimited(CarSearchError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamUnavailable(CarSearchError):
    status_code = 503
    code = "upstream_unavailable"


class ServiceUnavailable(CarSearchError):
    status_code = 503
    code = "service_unavailable"


class SetupError(Exception):
    """A problem an operator must fix (bad URL, unreachable server, busy data directory).

    The command line prints its message as one line and exits non-zero.
    """
