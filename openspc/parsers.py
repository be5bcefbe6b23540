"""The API's one parser (settings.REST_FRAMEWORK). A module of its own: DRF reads the setting when
rest_framework.views is imported, which openspc.api itself imports."""

from typing import Any

from rest_framework import exceptions, parsers


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with a body nested deeper than Python's parser goes (`[[[[…`, about a
    thousand levels: the recursion limit) a parse error like any other malformed JSON. The parser
    raises RecursionError there, which is no ValueError, so DRF let it through as a 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - the body is nested too deeply.") from None
