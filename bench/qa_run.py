"""A QA run of a 200-operation spec, concurrency 10, against a local target: how long each stage
takes and the scenarios per second. Prints a table, then one JSON line:

    {"operations": 200, "scenarios": ..., "seconds": ..., "scenarios_per_s": ...}

    DATABASE_URL=postgres://... REDIS_URL=redis://... python bench/qa_run.py [--operations 200]

The run goes through pipeline.run_execute in this process (the Celery task does only that), on the
database named by DATABASE_URL (migrated first; SQLite under var/ when unset). The target is a
threaded HTTP server on 127.0.0.1 answering every operation at once, so the figure is the runner's
own cost: generation, requests, checks, result rows and events.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def spec(operations: int) -> dict[str, Any]:
    """operations/2 collections, each with a list (GET, a bounded query) and a create (POST, a body)."""
    body = {
        "type": "object",
        "required": ["name", "size"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 20},
            "size": {"type": "integer", "minimum": 1, "maximum": 10},
        },
    }
    item = {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}}
    limit = {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 50}}
    listed = {"application/json": {"schema": {"type": "array", "items": item}}}
    paths: dict[str, Any] = {}
    for index in range(operations // 2):
        paths[f"/things{index}"] = {
            "get": {
                "operationId": f"list{index}",
                "parameters": [limit],
                "responses": {"200": {"description": "ok", "content": listed}},
            },
            "post": {
                "operationId": f"create{index}",
                "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
                "responses": {
                    "201": {"description": "created", "content": {"application/json": {"schema": item}}},
                    "400": {"description": "invalid"},
                },
            },
        }  # fmt: skip
    return {"openapi": "3.0.3", "info": {"title": "bench", "version": "1"}, "paths": paths}


class Target(BaseHTTPRequestHandler):
    """Lists answer [], creates 201 with an id, or 400 when the body lacks a field or breaks a bound."""

    protocol_version = "HTTP/1.1"

    def _answer(self, status: int, payload: Any) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        query = self.path.partition("?")[2]
        limit = dict(p.partition("=")[::2] for p in query.split("&") if p).get("limit", "10")
        ok = limit.isdigit() and 1 <= int(limit) <= 50
        self._answer(200 if ok else 400, [] if ok else {"detail": "limit"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            data = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            data = None
        valid = (
            isinstance(data, dict)
            and isinstance(data.get("name"), str)
            and 1 <= len(data["name"]) <= 20
            and isinstance(data.get("size"), int)
            and not isinstance(data.get("size"), bool)
            and 1 <= data["size"] <= 10
        )
        self._answer(
            201 if valid else 400, {"id": 1, "name": data["name"]} if valid else {"detail": "invalid"}
        )

    def log_message(self, format: str, *args: object) -> None:
        pass


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openspc.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ["QA_TARGET_ALLOWLIST"] = "127.0.0.0/8"
    import logging

    import django
    from django.core.management import call_command

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    call_command("migrate", verbosity=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args(argv)
    setup_django()
    from django.db.models import Min

    from apps.qa_runs.models import QaEvent
    from apps.qa_runs.pipeline import run_execute
    from apps.qa_runs.services import qa_package_create, qa_run_request

    server = ThreadingHTTPServer(("127.0.0.1", 0), Target)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    name = f"bench {time.time():.0f}"
    package = qa_package_create(
        name=name,
        target_base_url=f"http://127.0.0.1:{server.server_address[1]}",
        spec_text=json.dumps(spec(args.operations)),
        max_scenarios=10_000,
        concurrency=args.concurrency,
        allow_unsafe_methods=True,  # its own throwaway target: the figure counts the writes too
    )
    run = qa_run_request(package=package, requested_by=None)
    started = time.perf_counter()
    run_execute(run_id=run.pk)
    seconds = time.perf_counter() - started
    server.shutdown()
    run.refresh_from_db()
    firsts = dict(
        QaEvent.objects.filter(run=run)
        .values("type")
        .annotate(at=Min("created_at"))
        .values_list("type", "at")
    )
    origin = firsts["REQUESTED"]
    print(f"{'stage':<22}{'from start, s':>14}")
    for stage in ("SPEC_FETCHED", "SCENARIO_CREATED", "EXECUTION_STARTED", "QA_EVAL_DONE", run.status):
        if stage in firsts:
            print(f"{stage:<22}{(firsts[stage] - origin).total_seconds():>14.2f}")
    covered = f"{run.operations_covered}/{run.operations_total}"
    print(f"status {run.status}, verdict {run.verdict or '-'}, {run.scenarios_total} scenarios, ", end="")
    print(f"{run.steps_total} steps, {covered} operations covered")
    result = {
        "operations": run.operations_total,
        "scenarios": run.scenarios_total,
        "seconds": round(seconds, 2),
        "scenarios_per_s": round(run.scenarios_total / seconds, 1) if seconds else None,
    }
    print(json.dumps(result))
    return 0 if run.status == "COMPLETE" else 1


if __name__ == "__main__":
    sys.exit(main())
