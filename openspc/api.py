"""API plumbing shared by every app: one error format, pagination, schema hooks.

Every error leaves the API as::

    {"error": {"code": "validation_error", "message": "...", "fields": {"usl": ["..."]}}}

Services raise django.core.exceptions.ValidationError (with field names where
they apply); the handler turns it into a 400 in that shape, so views stay free
of error handling.
"""

import math
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError, models
from django.db.models import ProtectedError
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

from openspc.middleware import CONNECTION_ERRORS, database_unavailable_answered

M = TypeVar("M", bound=models.Model)


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def _error_json(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message, "fields": {}}}, status=status_code)


@csrf_exempt  # it changes nothing; a stray cookie must not turn a 404 into an HTML 403
def not_found(request: HttpRequest, exception: Exception | None = None) -> Any:
    """Django's 404 (no route matched): the API's error format under /api/, the usual page elsewhere."""
    if request.path.startswith("/api/"):
        return _error_json(404, "not_found", "Not found.")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception or Exception())


def csrf_failure(request: HttpRequest, reason: str = "") -> Any:
    if request.path.startswith("/api/"):
        return _error_json(403, "csrf_failed", f"CSRF check failed: {reason}")
    from django.views.csrf import csrf_failure as page_csrf_failure

    return page_csrf_failure(request, reason)


def server_error(request: HttpRequest) -> Any:
    if request.path.startswith("/api/"):
        return _error_json(500, "server_error", "Server error; it has been logged.")
    from django.views.defaults import server_error as page_server_error

    return page_server_error(request)


class BodyTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "body_too_large"


class DatabaseUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is unavailable; try again shortly."
    default_code = "database_unavailable"


def database_unavailable_json() -> JsonResponse:
    """The API's 503 for a lost database connection, outside DRF's views (openspc.middleware)."""
    return _error_json(503, DatabaseUnavailable.default_code, str(DatabaseUnavailable.default_detail))


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class DomainConflict(Exception):
    """A service's refusal because of the state of things (already acknowledged, frozen, ended):
    the API answers 409 `conflict` with `api_message()`, in one place (exception_handler), so views
    call the service without catching it. A subclass may name its own `code` and add members to
    the error object (`api_extra`, e.g. the reasons a release is blocked)."""

    code = "conflict"

    def api_message(self) -> str:
        return str(self)

    def api_extra(self) -> dict[str, Any]:
        return {}


def _first_message(detail: Any) -> str | None:
    if detail is None:
        return None
    if isinstance(detail, dict):
        for value in detail.values():
            message = _first_message(value)
            if message:
                return message
        return None
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else None
    return str(detail)


def _fields_message(fields: dict[str, Any]) -> str:
    """'code: This field may not be blank.' naming the first field, and how many more failed."""
    name, errors = next(iter(fields.items()))
    message = f"{name}: {_first_message(errors)}"
    others = len(fields) - 1
    if others:
        message += f" (and {others} more field{'s' if others > 1 else ''}; see fields)"
    return message


def _validation_code(exc: exceptions.ValidationError) -> str:
    """'validation_error', or the service's own code (e.g. plan_locked) when it gave one."""
    codes = exc.get_codes()
    if isinstance(codes, dict):
        codes = codes.get("non_field_errors", [])
    first = codes[0] if isinstance(codes, list) and codes else None
    return first if isinstance(first, str) and first != "invalid" else "validation_error"


def _error_body(exc: exceptions.APIException) -> dict[str, Any]:
    detail = exc.detail
    code = _validation_code(exc) if isinstance(exc, exceptions.ValidationError) else exc.default_code
    fields: dict[str, Any] = {}
    if (
        isinstance(detail, dict)
        and {"detail", "code"} <= set(detail)
        and not isinstance(exc, exceptions.ValidationError)
    ):
        # simplejwt's errors are {"detail", "code"[, "messages"]}: its code and text, not fields.
        return {"error": {"code": str(detail["code"]), "message": str(detail["detail"]), "fields": {}}}
    if isinstance(detail, dict):
        fields = {key: value for key, value in detail.items() if key != "non_field_errors"}
        message = _first_message(detail.get("non_field_errors"))
        if message is None and fields:
            message = _fields_message(fields)
    elif isinstance(detail, list):
        message = _first_message(detail)
    else:
        message = str(detail)
        code = getattr(detail, "code", code) or code
    return {"error": {"code": code, "message": message or str(exc.default_detail), "fields": fields}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    lost: Exception | None = None  # the database connection error, when that is what happened
    conflict: DomainConflict | None = None
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, RequestDataTooBig):
        # Raised when the view first reads request.body (DRF does, to parse JSON): Django's
        # limit, DATA_UPLOAD_MAX_MEMORY_SIZE, checked before the body is read into memory.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        exc = BodyTooLarge(f"The request body is larger than {limit:,} bytes; send smaller batches.")
    elif isinstance(exc, DjangoPermissionDenied):
        # A service may say what is not allowed ("Item 7 is not assigned to you"); keep it.
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, ProtectedError):
        names = sorted({str(obj._meta.verbose_name) for obj in exc.protected_objects})
        exc = Conflict(f"It is still used by: {', '.join(names)}. Deactivate or retire it instead.")
    elif isinstance(exc, DomainConflict):
        conflict, exc = exc, Conflict(exc.api_message())
    elif isinstance(exc, IntegrityError):
        exc = Conflict("The change conflicts with existing data (a duplicate or a missing reference).")
    elif isinstance(exc, CONNECTION_ERRORS):
        lost, exc = exc, DatabaseUnavailable()
    elif isinstance(exc, OverflowError | DataError):
        # A number too large for the database column (an id, a filter value, a page).
        exc = exceptions.ValidationError({"non_field_errors": ["A number in the request is out of range."]})
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    response.data = _error_body(exc)
    if conflict is not None:
        response.data["error"] = {**response.data["error"], "code": conflict.code, **conflict.api_extra()}
    if lost is not None:
        database_unavailable_answered(request=context["request"]._request, response=response, error=lost)
    return response


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string", "example": "validation_error"},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "additionalProperties": True,
                    "description": "Per-field messages, keyed by the request's field names.",
                },
            },
        }
    },
}

_ERROR_DESCRIPTIONS = {
    "400": "Invalid input; `fields` names what is wrong.",
    "401": "Not authenticated.",
    "403": "Authenticated, but the role does not allow this.",
    "404": "Not found (or not visible to this user).",
    "409": "Conflicts with the current state (e.g. still in use).",
    "413": "The request body is larger than the configured limit.",
    "429": "Too many requests from this address, or locked out after failed sign-ins.",
    "503": "The database is unavailable for the moment; retry after `Retry-After` seconds.",
}
# Operations with a rate limit and sign-in lockout (openspc/signin.py).
_RATE_LIMITED = ("/api/v1/auth/token/",)


def add_error_responses(
    result: dict[str, Any], generator: Any, request: Request | None, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: document the one error format on every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    # Any operation may meet a lost database connection (openspc.middleware): one response for all.
    result["components"].setdefault("responses", {})["DatabaseUnavailable"] = {
        "description": _ERROR_DESCRIPTIONS["503"],
        "headers": {
            "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}
        },
        "content": {"application/json": {"schema": ref}},
    }
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            codes = ["400", "401", "403"]
            if "{" in path:
                codes.append("404")
            if method in {"post", "put", "patch", "delete"}:
                codes.append("409")
            if method in {"post", "put", "patch"}:
                codes.append("413")
            if path.startswith(_RATE_LIMITED):
                codes.append("429")
            responses = operation.setdefault("responses", {})
            for code in codes:
                responses.setdefault(
                    code,
                    {
                        "description": _ERROR_DESCRIPTIONS[code],
                        "content": {"application/json": {"schema": ref}},
                    },
                )
            responses.setdefault("503", {"$ref": "#/components/responses/DatabaseUnavailable"})
    return result


class FiniteFloatField(serializers.FloatField):
    """A float that is a real number: 'nan' and 'inf' are refused like any other non-number."""

    def to_internal_value(self, data: Any) -> float:
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("invalid")
        return float(value)


class ModelSerializer(serializers.ModelSerializer):
    """Project base: model float fields take finite numbers only."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.FloatField: FiniteFloatField,
    }


def acting_user(request: HttpRequest | Request) -> User:
    """Who is doing this: the authenticated user, never a name taken from the request body."""
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        raise exceptions.NotAuthenticated()
    return user


def instance_of(serializer: serializers.BaseSerializer[M]) -> M:
    """The object an update serializer was bound to (DRF's update() always binds one)."""
    if serializer.instance is None:
        raise AssertionError("update serializer without an instance")
    return serializer.instance
