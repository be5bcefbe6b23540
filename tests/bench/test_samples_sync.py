"""bench/samples_sync.py: its summary follows the definitions in its docstring, and a quick run works
end to end on real PostgreSQL and Redis (skipped without them: it measures the production setup)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench.samples_sync import Cell, Plant, Sampler, parse_args, process_tree, run_cell, server_extra, summary
from tests.support.bench import database_names, postgres_url

ROOT = Path(__file__).resolve().parents[2]

KEYS = {"samples_per_s_16_n1", "samples_per_s_16_n5", "p99_ms_4_n1", "p99_ms_4_n5", "statements_per_sample",
        "ceiling_per_s", "ceiling_ratio", "errors"}  # fmt: skip


def cell(endpoint: str, n: int | None, clients: int, per_s: float, p99: float, errors: int = 0) -> Cell:
    return Cell(endpoint, n, clients, int(per_s * 2), per_s, p99 / 2, p99, errors, 2.0)


def test_the_summary_names_the_cells_and_the_ceiling() -> None:
    cells = [cell("samples", n, c, per_s=10.0 * c + n, p99=100.0 + c + n, errors=c == 4 and n == 5)
             for n in (1, 5) for c in (1, 4, 16)]  # fmt: skip
    cells += [cell("ping", None, 1, 150.0, 10.0), cell("ping", None, 4, 250.0, 30.0),
              cell("ping", None, 16, 200.0, 90.0, errors=2)]  # fmt: skip

    result = summary(cells, {1: 38, 5: 44}, [1, 5], [1, 4, 16])

    assert result.keys() >= KEYS
    assert (result["samples_per_s_16_n1"], result["samples_per_s_16_n5"]) == (161.0, 165.0)
    assert (result["p99_ms_4_n1"], result["p99_ms_4_n5"]) == (105.0, 109.0)
    assert (result["statements_per_sample"], result["statements_per_sample_n5"]) == (38, 44)
    assert result["ceiling_per_s"] == 250.0  # the best ping rate, whatever the client count
    assert result["ceiling_ratio"] == round(161.0 / 250.0, 3)  # the slower size at the most clients
    assert result["errors"] == 3


def test_options() -> None:
    quick = parse_args(["--quick"])
    assert (quick.seconds, quick.warmup, quick.client_counts, quick.size_list) == (
        2.0,
        0.5,
        [1, 4, 16],
        [1, 5],
    )
    assert (parse_args([]).seconds, parse_args([]).warmup) == (20.0, 3.0)
    assert parse_args(["--quick", "--seconds", "1"]).seconds == 1.0
    assert server_extra(parse_args([])) == []  # runs on an openspc.server without --processes too
    assert server_extra(parse_args(["--processes", "2", "--server-args", "--http-timeout 30"])) == [
        "--processes", "2", "--http-timeout", "30",
    ]  # fmt: skip
    for bad in (["--clients", "0"], ["--sizes", "x"], ["--processes", "0"], ["--seconds", "0"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


class NoSampler(Sampler):
    def __init__(self) -> None:
        self.started = 0

    def start(self) -> None:
        self.started += 1

    def finish(self) -> dict[str, float]:
        return {"web": 0.5}


class EveryThirdFails(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as daphne
    count = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        EveryThirdFails.count += 1
        status = 500 if EveryThirdFails.count % 3 == 0 else 201
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


def test_a_cell_counts_good_answers_in_its_window_and_every_error() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EveryThirdFails)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    plant = Plant(lot_id=1, characteristic_ids={5: 7}, item_ids=[11, 12], password="")
    sampler = NoSampler()
    try:
        result = run_cell(port=server.server_address[1], token="t", plant=plant, n=5, clients=2,
                          warmup=0.3, seconds=0.5, sampler=sampler)  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()

    total = EveryThirdFails.count
    assert result.errors == total // 3
    assert result.answered == total - total // 3
    assert 0 < result.requests < result.answered  # the warm-up's are not counted
    assert result.per_s == round(result.requests / 0.5, 1)
    assert result.first_error.startswith("500")
    assert result.cpu_ms == {"web": round(500 / result.requests, 2)}
    assert sampler.started == 1


def test_the_web_side_counts_the_children_of_the_server() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        tree = process_tree(os.getpid())
        assert tree[0] == os.getpid()
        assert child.pid in tree
    finally:
        child.kill()
        child.wait()


@pytest.mark.services
@pytest.mark.slow
def test_a_quick_run_end_to_end() -> None:
    """1, 4, 16 clients, n = 1 and 5, and the ceiling, 1 s per cell: about 40 s on two cores."""
    database_url = postgres_url()
    command = [sys.executable, "bench/samples_sync.py", "--quick", "--seconds", "1",
               "--database", "openspc_sync_pytest", "--purge-queues"]  # fmt: skip
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)

    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    lines = completed.stdout.strip().splitlines()
    assert any(line.split()[:3] == ["samples", "5", "16"] for line in lines)  # a table row
    result = json.loads(lines[-1])
    assert result.keys() >= KEYS
    assert result["errors"] == 0, completed.stderr[-3000:]
    assert result["samples_per_s_16_n1"] > 0
    assert result["samples_per_s_16_n5"] > 0
    assert result["p99_ms_4_n1"] > 0
    assert result["p99_ms_4_n5"] > 0
    assert result["statements_per_sample"] > 1  # more than the authentication's one
    assert result["ceiling_per_s"] > 0
    assert result["ceiling_ratio"] > 0
    assert len(result["cells"]) == 9
    assert all(c["cpu_ms"]["web"] > 0 for c in result["cells"])
    assert database_names(database_url, "openspc_sync_pytest") == []  # dropped again
