"""Request body limit benchmark: oversize chunked uploads against daphne as OpenSPC runs it.

Run from the repository root (no other service is needed: the uploads never reach Django):

    .venv/bin/python bench/limits.py [--uploads 3] [--megabytes 200] [--limit-bytes 4194304]

Starts daphne the project's way (openspc.embedded.web_command: `python -m openspc.server`) on a
free loopback port with MAX_REQUEST_BYTES = --limit-bytes, checks it answers a small anonymous
POST (401), then --uploads clients at once each send a chunked body of --megabytes MB, without
credentials, to POST /api/v1/device/observations/ on 127.0.0.1, until the server answers or
closes the connection; no client ever sends more than --megabytes. daphne is stopped at the end,
on Ctrl-C or failure too.

Definitions (a sampler thread reads them every 10 ms, from the first upload's start to the last
answer):

* tmp_growth_mb: the peak growth of the space used on the file system of
  tempfile.gettempdir() over its value just before the uploads (what other programs write there
  meanwhile counts too: an upper bound of daphne's share).
* rss_growth_mb: the peak growth of daphne's resident memory (VmRSS) over its value after the
  check request.
* to_413_ms: per upload, from its first body byte sent to its answer's status line read.
* sent_mb: per upload, what the client sent before the server answered or closed.

Every upload must be answered 413 and both growths must stay under --max-growth-mb (20),
else the benchmark exits 1. Prints a table for people; the LAST line is one line of JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ingest_common import PATH, BenchError  # noqa: E402
from bench.ingest_rest import interrupts_as_exceptions  # noqa: E402
from openspc.embedded import free_port, wait_for_port, web_command  # noqa: E402

LOG = ROOT / "var" / "bench" / "limits-web.log"
MB = 1024 * 1024
CHUNK = 64 * 1024
SAMPLE_S = 0.01
ANSWER_WITHIN_S = 10.0


@dataclass
class Upload:
    status: int | None = None
    sent_mb: float = 0.0
    to_413_ms: float | None = None


@dataclass
class Peaks:
    tmp_growth_mb: float = 0.0
    rss_growth_mb: float = 0.0


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no VmRSS for process {pid}")


def tmp_used_bytes() -> int:
    return shutil.disk_usage(tempfile.gettempdir()).used


def request_head(*, chunked: bool, length: int = 0) -> bytes:
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}"
    return (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"{framing}\r\n\r\n").encode()  # fmt: skip


def status_line(sock: socket.socket) -> int | None:
    """The status of the answer on the socket (None: closed or silent without one)."""
    sock.settimeout(ANSWER_WITHIN_S)
    answer = b""
    try:
        while b"\r\n" not in answer:
            data = sock.recv(4096)
            if not data:
                break
            answer += data
    except (TimeoutError, ConnectionResetError):
        pass
    parts = answer.split(b"\r\n", 1)[0].split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def upload(port: int, total_bytes: int, result: Upload) -> None:
    """Send a chunked body of total_bytes until the server answers or closes the connection."""
    data = b"%x\r\n" % CHUNK + b" " * CHUNK + b"\r\n"
    sent = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request_head(chunked=True))
        started = time.monotonic()
        try:
            while sent < total_bytes and not select.select([sock], [], [], 0)[0]:
                sock.sendall(data)
                sent += CHUNK
            if sent >= total_bytes:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed after its answer, which is still to be read
        result.status = status_line(sock)
        result.to_413_ms = round((time.monotonic() - started) * 1000, 1) if result.status == 413 else None
    result.sent_mb = round(sent / MB, 2)


def sample(pid: int, stop: threading.Event, peaks: Peaks) -> None:
    tmp_before, rss_before = tmp_used_bytes(), rss_bytes(pid)
    while not stop.is_set():
        peaks.tmp_growth_mb = max(peaks.tmp_growth_mb, (tmp_used_bytes() - tmp_before) / MB)
        peaks.rss_growth_mb = max(peaks.rss_growth_mb, (rss_bytes(pid) - rss_before) / MB)
        time.sleep(SAMPLE_S)


def web_start(limit_bytes: int) -> tuple[subprocess.Popen[bytes], int]:
    env = {**os.environ, "MAX_REQUEST_BYTES": str(limit_bytes), "DEBUG": "0", "ALLOWED_HOSTS": "127.0.0.1",
           "PYTHONUNBUFFERED": "1"}  # fmt: skip
    env.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    port = free_port()
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("wb") as out:
        process = subprocess.Popen(web_command(host="127.0.0.1", port=port), env=env, cwd=ROOT, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        wait_for_port(port, process, "daphne", LOG)
    except SystemExit as exc:
        raise BenchError(str(exc)) from None
    return process, port


def web_check(port: int) -> None:
    """A small anonymous POST goes through to Django (401): the server serves, and is warm."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request_head(chunked=False, length=2) + b"[]")
        status = status_line(sock)
    if status != 401:
        raise BenchError(f"a small anonymous POST got {status}, not 401; see {LOG}")


def measure(args: argparse.Namespace) -> tuple[list[Upload], Peaks]:
    process, port = web_start(args.limit_bytes)
    try:
        web_check(port)
        uploads = [Upload() for _ in range(args.uploads)]
        peaks, stop = Peaks(), threading.Event()
        sampler = threading.Thread(target=sample, args=(process.pid, stop, peaks))
        sampler.start()
        clients = [threading.Thread(target=upload, args=(port, args.megabytes * MB, u)) for u in uploads]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        stop.set()
        sampler.join()
        if process.poll() is not None:
            raise BenchError(f"daphne exited with code {process.returncode}; see {LOG}")
        return uploads, peaks
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def table(uploads: Sequence[Upload]) -> list[str]:
    lines = [f"{'upload':>7}{'status':>8}{'sent MB':>10}{'to 413 ms':>11}"]
    for index, u in enumerate(uploads, start=1):
        to_413 = f"{u.to_413_ms:,.1f}" if u.to_413_ms is not None else "-"
        lines.append(f"{index:>7}{u.status or '-':>8}{u.sent_mb:>10,.2f}{to_413:>11}")
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--uploads", type=int, default=3, help="concurrent uploads")
    parser.add_argument("--megabytes", type=int, default=200, help="size of each chunked body (MiB)")
    parser.add_argument("--limit-bytes", type=int, default=4 * MB, help="MAX_REQUEST_BYTES of the server")
    parser.add_argument("--max-growth-mb", type=float, default=20.0, help="most /tmp and RSS growth allowed")
    args = parser.parse_args(argv)
    if args.uploads < 1 or args.megabytes < 1:
        parser.error("--uploads and --megabytes must be at least 1")
    if args.limit_bytes < 64 * 1024 or args.limit_bytes >= args.megabytes * MB:
        parser.error("--limit-bytes must be at least 65536 (the setting's minimum) and below --megabytes")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"Request body limit benchmark: {args.uploads} concurrent anonymous chunked uploads of "
          f"{args.megabytes} MiB to POST {PATH} on 127.0.0.1, MAX_REQUEST_BYTES {args.limit_bytes:,}; "
          f"{os.cpu_count()} CPUs; daphne's log in {LOG}", flush=True)  # fmt: skip
    try:
        with interrupts_as_exceptions():
            uploads, peaks = measure(args)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; daphne is stopped", file=sys.stderr)
        return 130
    print()
    for line in table(uploads):
        print(line)
    times = [u.to_413_ms for u in uploads if u.to_413_ms is not None]
    refused = len(times) == len(uploads)
    within = max(peaks.tmp_growth_mb, peaks.rss_growth_mb) < args.max_growth_mb
    print(f"\npeak growth while they ran: {tempfile.gettempdir()} {peaks.tmp_growth_mb:,.1f} MB, daphne RSS "
          f"{peaks.rss_growth_mb:,.1f} MB (each must stay under {args.max_growth_mb:g} MB)")  # fmt: skip
    summary = {
        "uploads": len(uploads), "megabytes": args.megabytes, "limit_bytes": args.limit_bytes,
        "all_413": refused, "within_limits": within,
        "tmp_growth_mb": round(peaks.tmp_growth_mb, 1), "rss_growth_mb": round(peaks.rss_growth_mb, 1),
        "to_413_ms_p50": statistics.median(times) if times else None,
        "to_413_ms_max": max(times, default=None),
        "runs": [asdict(u) for u in uploads],
    }  # fmt: skip
    print(json.dumps(summary, sort_keys=True))
    return 0 if refused and within else 1


if __name__ == "__main__":
    sys.exit(main())
