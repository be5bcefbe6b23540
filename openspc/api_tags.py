"""The API's groups (OpenAPI tags) by app label: plain data, read by settings and the schema class."""

# Tag by app label, in the order the docs list them; `description` shows under each group.
TAGS: dict[str, dict[str, str]] = {
    "auth": {"name": "Authentication", "description": "JWT access and refresh tokens."},
    "config": {
        "name": "Configuration",
        "description": "Products, tests, test plans, plan assignment, characteristics, devices.",
    },
    "observations": {
        "name": "Observations",
        "description": "Lots, items, assignment, results from testers and devices.",
    },
    "calculations": {
        "name": "SPC",
        "description": "Samples, violations and their acknowledgement, control limits, statistics, charts.",
    },
    "audit": {"name": "Audit trail", "description": "Who changed what, when and why (read only)."},
    "records": {
        "name": "Lot records",
        "description": "Lot review, signed disposition under the release policy, out-of-spec investigations.",
    },
    "subscriptions": {"name": "Subscriptions", "description": "Subscriptions and the notification inbox."},
    "mqtt_bridge": {"name": "MQTT bridge", "description": "Tag mapping, edge nodes and dead letters."},
    "qa_runs": {"name": "QA package runs", "description": "API test suites run against an OpenAPI target."},
}


def tag_list() -> list[dict[str, str]]:
    """SPECTACULAR_SETTINGS["TAGS"]: every group with its description, in docs order."""
    return list(TAGS.values())
