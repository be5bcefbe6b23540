"""Logging filters: expected conditions make one line, never a traceback."""

import logging


class ClientErrorWithoutTraceback(logging.Filter):
    """django.request logs a refused request (403 PermissionDenied, 404 Http404, 400) with the
    exception attached, so a tester opening a chart they may not read printed a traceback. A 4xx
    is the client's condition, not a fault of ours: its line stays, its traceback goes. A 5xx
    keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
