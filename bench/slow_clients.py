"""Benchmark: /healthz latency while N clients trickle request bodies, beside idle.

Starts `agentbot serve` (default settings: 2 workers x 8 threads, a 10 s body
deadline). Times M `GET /healthz` requests, each on a new connection as a probe
makes them, first with the server idle; then opens N connections that each declare
a 100,000-byte body to `/slack/events` and send it one byte every 0.5 s (until a
second before the deadline), and times M more while they trickle. The target is
every probe answered within 1 s. Then waits for the tricklers' answers: each should
get a 408 at the body deadline, counted over the whole body, and the time that took
is printed beside the deadline.

Run: uv run python bench/slow_clients.py [--clients 50] [--probes 40] [--workers 2] [--threads 8]
Writes bench/results/slow_clients.json.
"""

from __future__ import annotations

import argparse
import http.client
import select
import socket
import sys
import threading
import time
from typing import Any

from harness import Stack, fmt_ms, percentiles, write_results

TARGET_S = 1.0
DEADLINE_S = 10.0  # REQUEST_BODY_TIMEOUT's default
DECLARED = 100_000


def probe(port: int) -> float:
    """Seconds one GET /healthz on a fresh connection took (inf if it failed)."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE_S + 5)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        ok = response.status == 200
    except OSError:
        ok = False
    finally:
        connection.close()
    return time.monotonic() - started if ok else float("inf")


def probes(port: int, count: int, interval: float) -> list[float]:
    samples = []
    for _ in range(count):
        samples.append(probe(port))
        time.sleep(interval)
    return samples


class Tricklers:
    """N connections sending a body a byte at a time until the server answers."""

    def __init__(self, port: int, count: int) -> None:
        head = (
            b"POST /slack/events HTTP/1.1\r\nHost: agentbot\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: " + str(DECLARED).encode() + b"\r\n\r\n"
        )
        self.sockets = []
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S + 10)
            sock.sendall(head)
            self.sockets.append(sock)
        self.opened = time.monotonic()
        self.answered_after: dict[int, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()

    def _trickle(self) -> None:
        # Stops a second before the deadline: a byte sent after the server's close is
        # answered with a reset that can discard the 408 before it is read.
        while not self.stop.wait(0.5) and time.monotonic() - self.opened < DEADLINE_S - 1:
            for sock in self.sockets:
                sock.send(b"x")

    def answered(self) -> int:
        """How many have an answer waiting to be read."""
        return len(select.select(self.sockets, [], [], 0)[0])

    def statuses(self) -> list[int | None]:
        """Each connection's response status (None if it got none), once all are done."""
        found: list[int | None] = []
        for index, sock in enumerate(self.sockets):
            try:
                sock.settimeout(DEADLINE_S + 10)
                received = b""
                while chunk := sock.recv(4096):
                    received += chunk
                    self.answered_after.setdefault(index, time.monotonic() - self.opened)
                found.append(int(received.split(b" ")[1]) if received else None)
            except (OSError, ValueError, IndexError):
                found.append(None)
        self.stop.set()
        self.thread.join()
        for sock in self.sockets:
            sock.close()
        return found


def main() -> int:
    """Measure /healthz idle and under trickling clients, print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50, help="trickling connections")
    parser.add_argument("--probes", type=int, default=40, help="/healthz requests per phase")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker process")
    args = parser.parse_args()
    # The probes under load must all fall inside the tricklers' deadline.
    interval = min(0.1, (DEADLINE_S - 2) / args.probes)

    with Stack() as stack:
        serve = stack.start_serve(args.workers, args.threads)
        port = serve.port or 0
        idle = probes(port, args.probes, interval)
        tricklers = Tricklers(port, args.clients)
        time.sleep(0.5)
        loaded = probes(port, args.probes, interval)
        still_trickling = args.clients - tricklers.answered()
        statuses = tricklers.statuses()
    answered = sorted(tricklers.answered_after.values())

    idle_p = percentiles(idle)
    loaded_p = percentiles([s for s in loaded if s != float("inf")])
    failed = sum(1 for s in loaded if s == float("inf"))
    within = all(s <= TARGET_S for s in loaded)
    got_408 = sum(1 for s in statuses if s == 408)
    results: dict[str, Any] = {
        "server": {"workers": args.workers, "threads": args.threads},
        "clients": args.clients,
        "probes_per_phase": args.probes,
        "target_s": TARGET_S,
        "body_deadline_s": DEADLINE_S,
        "healthz_idle": idle_p,
        "healthz_under_tricklers": loaded_p,
        "healthz_failed_under_tricklers": failed,
        "tricklers_still_sending_after_probes": still_trickling,
        "tricklers_answered_408": got_408,
        "tricklers_answered_after_s": {
            "first": round(answered[0], 2) if answered else None,
            "last": round(answered[-1], 2) if answered else None,
        },
        "summary": {
            f"/healthz max idle / under {args.clients} tricklers (target 1 s)": (
                f"{fmt_ms(idle_p['max_ms'])} / {fmt_ms(loaded_p['max_ms'])}"
                + (f", {failed} failed" if failed else "")
            ),
            "tricklers answered 408, after (deadline 10 s)": (
                f"{got_408} of {args.clients}, "
                f"{answered[0] if answered else 0:.1f}-{answered[-1] if answered else 0:.1f} s"
            ),
        },
    }
    path = write_results("slow_clients", results)

    print(f"`agentbot serve`, {args.workers} workers x {args.threads} threads")
    print(f"{'/healthz':28} {'p50':>10} {'p99':>10} {'max':>10}   target")
    for label, figures in (("idle", idle_p), (f"under {args.clients} tricklers", loaded_p)):
        print(
            f"{label:28} {fmt_ms(figures['p50_ms']):>10} {fmt_ms(figures['p99_ms']):>10}"
            f" {fmt_ms(figures['max_ms']):>10}   {TARGET_S * 1000:.0f} ms"
        )
    print(f"probes failed under tricklers: {failed}; all within target: {within}")
    print(f"tricklers still sending when the probes ended: {still_trickling} of {args.clients}")
    print(
        f"tricklers answered 408: {got_408} of {args.clients}, after "
        f"{results['tricklers_answered_after_s']['first']}-"
        f"{results['tricklers_answered_after_s']['last']} s (deadline {DEADLINE_S:g} s)"
    )
    print(f"wrote {path.relative_to(path.parents[2])}")
    return 0 if within and got_408 == args.clients else 1


if __name__ == "__main__":
    sys.exit(main())
