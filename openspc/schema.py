"""OpenAPI schema generation: operations grouped by the part of the system they belong to.

drf-spectacular tags an operation with the first segment of its path, which under `/api/v1/` put
every operation under one tag, `v1`. Here the tag is the app that serves the operation, named the
way the docs and the pages name it, so the API docs open as a table of contents.
"""

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema

from openspc.api_tags import TAGS


class AutoSchema(SpectacularAutoSchema):
    """Tags each operation with the app whose view serves it (`apps.<label>....`); views from
    libraries (the JWT token endpoints) go under Authentication."""

    def get_tags(self) -> list[str]:
        module: str = type(self.view).__module__
        parts = module.split(".")
        label = parts[1] if parts[0] == "apps" and len(parts) > 1 else "auth"
        tag: dict[str, Any] | None = TAGS.get(label)
        if tag is None:
            raise LookupError(f"no OpenAPI tag for app {label!r} ({module}): add it to openspc.schema.TAGS")
        return [tag["name"]]
