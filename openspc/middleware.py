"""A request whose database connection is lost (the server restarted, failed over, or cut the
connection) answers 503 Service Unavailable with Retry-After, not 500: nothing is wrong with the
request, and the same request a few seconds later will most likely succeed. The log gets one line
saying so, not a traceback per request while the database is away.

The API's exception handler (openspc.api) answers its own views; the middleware answers the pages.
"""

import logging

from django.db import InterfaceError, OperationalError, close_old_connections
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils.deprecation import MiddlewareMixin
from django.utils.log import log_response

logger = logging.getLogger("openspc.database")

# OperationalError: the connection broke during a query, or no connection could be made (the pool
# timed out too). InterfaceError: the connection was already closed when the request used it.
CONNECTION_ERRORS = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 5


def database_unavailable_answered(*, request: HttpRequest, response: HttpResponse, error: Exception) -> None:
    """Finish a 503 for a lost connection: Retry-After, the one log line, and the broken connection
    dropped so this thread's next query connects again."""
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    lines = str(error).strip().splitlines()  # psycopg adds the SQL's position on further lines
    reason = lines[0] if lines else type(error).__name__
    # log_response marks the response as logged, so Django does not log the 503 a second time.
    log_response(
        "Database unavailable during %s %s (answered %s): %s",
        request.method,
        request.path,
        response.status_code,
        reason,
        response=response,
        request=request,
        logger=logger,
    )
    close_old_connections()


class DatabaseUnavailableMiddleware(MiddlewareMixin):
    """A view (or its template) that loses the database connection answers a plain 503 page."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, CONNECTION_ERRORS):
            return None
        if request.path.startswith("/api/"):  # a view of the API outside DRF
            from openspc.api import database_unavailable_json  # openspc.api imports this module

            response: HttpResponse = database_unavailable_json()
        else:
            # A page of its own, rendered without the request: the base layout would query again.
            response = HttpResponse(render_to_string("503.html"), status=503)
        database_unavailable_answered(request=request, response=response, error=exception)
        return response
