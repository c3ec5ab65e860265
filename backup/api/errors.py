"""Every API error as one JSON shape: `{"code", "message", "details"}`.

Backup errors keep their own `.code`; DRF's and Django's request errors get stable codes too, so
that a client can branch on `code` and show `message` to a person.
"""

from typing import Any

from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import UnreadablePostError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from backup.errors import (
    BackupError,
    DailyLimitReached,
    InvalidSchedule,
    UploadTooLarge,
    ValidationFailed,
)

BACKUP_ERROR_STATUS = {
    "invalid_file": status.HTTP_400_BAD_REQUEST,
    "unsupported_version": status.HTTP_400_BAD_REQUEST,
    "validation_failed": status.HTTP_400_BAD_REQUEST,
    "confirmation_required": status.HTTP_400_BAD_REQUEST,
    "refused": status.HTTP_409_CONFLICT,
    "permission_denied": status.HTTP_403_FORBIDDEN,
    "import_running": status.HTTP_409_CONFLICT,
    "upload_not_found": status.HTTP_404_NOT_FOUND,
    "upload_too_large": status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    "ambiguous_request": status.HTTP_400_BAD_REQUEST,
    "not_found": status.HTTP_404_NOT_FOUND,
    "daily_limit_reached": status.HTTP_429_TOO_MANY_REQUESTS,
    "job_active": status.HTTP_409_CONFLICT,
    "not_restorable": status.HTTP_409_CONFLICT,
    "link_refused": status.HTTP_403_FORBIDDEN,
    "password_required": status.HTTP_403_FORBIDDEN,
    "invalid_schedule": status.HTTP_400_BAD_REQUEST,
    "storage_failed": status.HTTP_503_SERVICE_UNAVAILABLE,
}


# DRF's own codes are kept, except where a plainer name helps a client.
RENAMED_CODES = {"parse_error": "malformed_request"}


class SqlExportGone(exceptions.APIException):
    status_code = status.HTTP_410_GONE
    default_code = "sql_export_not_supported"
    default_detail = "SQL export is not supported."

    def __init__(self, detail: str, details: Any = None) -> None:
        super().__init__(detail)
        self.details = details


def error_body(code: str, message: str, details: Any = None, **extra: Any) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details, **extra}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: the JSON error body for every failure a request can cause.

    Unexpected exceptions are left to Django (a 500 that is logged and reported), so that a bug
    is never disguised as a client error."""
    exc = _as_api_exception(exc)
    if isinstance(exc, BackupError):
        return _backup_error(exc)
    response = drf_exception_handler(exc, context)  # keeps WWW-Authenticate and Retry-After
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body("invalid_request", _validation_message(exc.detail), exc.detail)
    elif isinstance(exc, exceptions.Throttled):
        response.data = error_body(
            "throttled",
            str(exc.detail),
            {"retry_after": None if exc.wait is None else int(exc.wait + 0.999)},
        )
    else:
        code = str(exc.default_code)
        response.data = error_body(
            RENAMED_CODES.get(code, code), _text(exc.detail), getattr(exc, "details", None)
        )
    return response


def _backup_error(exc: BackupError) -> Response:
    status_code = BACKUP_ERROR_STATUS.get(exc.code, status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ValidationFailed):
        body = error_body(
            exc.code,
            exc.message,
            [problem.as_dict() for problem in exc.problems],
            more_problems=exc.more,
        )
    elif isinstance(exc, DailyLimitReached):
        # Shaped like DRF's throttling, so that a client waits the same way for both.
        body = error_body(exc.code, exc.message, {"retry_after": exc.retry_after})
        return Response(body, status=status_code, headers={"Retry-After": str(exc.retry_after)})
    elif isinstance(exc, InvalidSchedule):
        body = error_body(exc.code, exc.message, exc.errors)
    else:
        body = error_body(exc.code, exc.message)
    return Response(body, status=status_code)


def _as_api_exception(exc: Exception) -> Exception:
    """Django's request-body errors, raised while DRF parses, as the API errors they are."""
    if isinstance(exc, RequestDataTooBig):
        return UploadTooLarge(
            "The request's form fields are too large; send the backup as the 'file' part."
        )
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return exceptions.ParseError(f"The request has too many parts: {exc}")
    if isinstance(exc, SuspiciousOperation):
        return exceptions.ParseError(f"The request is malformed: {exc}")
    if isinstance(exc, UnreadablePostError):
        return exceptions.ParseError("The request body could not be read to its end.")
    return exc


def _text(detail: Any) -> str:
    if isinstance(detail, list):
        return " ".join(_text(item) for item in detail)
    if isinstance(detail, dict):
        return " ".join(f"{key}: {_text(value)}" for key, value in detail.items())
    return str(detail)


def _validation_message(detail: Any) -> str:
    """One sentence naming every invalid field, e.g. "Invalid request: mode: ... file: ..."."""
    if isinstance(detail, dict):
        parts = [
            _text(value) if key == "non_field_errors" else f"{key}: {_text(value)}"
            for key, value in detail.items()
        ]
        return "Invalid request. " + " ".join(parts)
    return "Invalid request. " + _text(detail)
