"""A small OpenAPI spec with a /things collection, for the QA package runs."""

from typing import Any

_ERROR = {"type": "object", "properties": {"detail": {"type": "string"}}}


def things_spec(version: str = "3.0.3") -> dict[str, Any]:
    """/things (list, create) and /things/{thingId} (read, delete), bearer auth except the health
    check; /ping is open. Bounds and an enum on Thing, so valid and invalid values are both known."""
    thing_new: dict[str, Any] = {
        "type": "object",
        "required": ["name", "size"],
        "properties": {
            "name": {"type": "string", "minLength": 3, "maxLength": 20},
            "size": {"type": "integer", "minimum": 10, "maximum": 20},
            "colour": {"type": "string", "enum": ["red", "green"]},
            "weight": {"type": "number", "minimum": 0.5, "exclusiveMaximum": 9.5}
            if version.startswith("3.1")
            else {"type": "number", "minimum": 0.5, "maximum": 9.5, "exclusiveMaximum": True},
            "created": {"type": "string", "format": "date-time", "readOnly": True},
        },
    }
    thing = {"allOf": [{"$ref": "#/components/schemas/ThingNew"}, {"type": "object", "required": ["thingId"],
             "properties": {"thingId": {"type": "integer", "readOnly": True}}}]}  # fmt: skip
    json_of = lambda ref: {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}  # noqa: E731
    item_parameter = {
        "name": "thingId",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
    return {
        "openapi": version,
        "info": {"title": "Things", "version": "1"},
        "servers": [{"url": "https://{host}/api", "variables": {"host": {"default": "things.example.com"}}}],
        "security": [{"bearer": []}],
        "paths": {
            "/ping": {
                "get": {"operationId": "ping", "security": [], "responses": {"200": {"description": "ok"}}}
            },
            "/things": {
                "get": {
                    "operationId": "listThings",
                    "parameters": [
                        {
                            "name": "limit",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Thing"},
                                    }
                                }
                            },
                        }
                    },
                },
                "post": {
                    "operationId": "createThing",
                    "requestBody": {"required": True, "content": json_of("ThingNew")},
                    "responses": {
                        "201": {"description": "created", "content": json_of("Thing")},
                        "400": {"$ref": "#/components/responses/Bad"},
                    },
                },
            },
            "/things/{thingId}": {
                "parameters": [item_parameter],
                "get": {
                    "operationId": "getThing",
                    "responses": {
                        "200": {"description": "ok", "content": json_of("Thing")},
                        "404": {"description": "gone"},
                    },
                },
                "delete": {"operationId": "deleteThing", "responses": {"204": {"description": "deleted"}}},
            },
        },
        "components": {
            "schemas": {"ThingNew": thing_new, "Thing": thing, "Error": _ERROR},
            "responses": {"Bad": {"description": "bad", "content": json_of("Error")}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
