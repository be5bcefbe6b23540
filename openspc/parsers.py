"""The API's request parser. A module of its own: DRF imports it while loading its settings."""

import io
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser


class BodyTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "body_too_large"


class BoundedJSONParser(JSONParser):
    """JSON, read only up to settings.DATA_UPLOAD_MAX_MEMORY_SIZE bytes: a larger body is a 413.

    Django checks that limit only when request.body is read; DRF reads the stream,
    so the parser counts the bytes itself (whatever Content-Length claims).
    """

    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise BodyTooLarge(f"The request body is larger than {limit:,} bytes; send smaller batches.")
        return super().parse(io.BytesIO(body), media_type, parser_context)
