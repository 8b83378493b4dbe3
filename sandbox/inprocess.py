"""In-process stand-ins for what `agentbot serve`, `worker` and `cron` run as processes.

`agentbot dev` keeps everything in one process so that an in-memory Redis (one
fakeredis server) can be shared by the web side and the workers. That rules out
forking: a forked child would get its own copy of the in-memory Redis. So jobs run
in worker threads, the scheduler ticks in a thread, and the bot's WSGI app is served
by a threaded server from the standard library.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from redis import Redis
from rq import Queue, SimpleWorker
from rq.cron import CronScheduler
from rq.job import Job
from rq.scheduler import RQScheduler
from rq.timeouts import TimerDeathPenalty
from rq.worker import WorkerStatus

log = logging.getLogger(__name__)

# How long an idle worker blocks on Redis before it looks at its stop flag again.
_IDLE_WAKE_SECONDS = 1


class ThreadWorker(SimpleWorker):
    """An RQ worker that runs each job in its own thread: no fork, no signals.

    Job timeouts raise inside the worker thread (RQ's timer death penalty) because
    alarm signals only reach the main thread. While a job runs, a side thread writes
    the heartbeats a forking worker's monitor would write, so the reconciler does not
    mistake a long job for a dead one.
    """

    death_penalty_class = TimerDeathPenalty

    def __init__(self, queues: Iterable[Queue], connection: Redis, **kwargs: Any) -> None:
        super().__init__(list(queues), connection=connection, **kwargs)
        self._beat_lock = threading.Lock()
        self._job_done = threading.Event()

    def _install_signal_handlers(self) -> None:
        # Only the main thread may install signal handlers; the main thread owns Ctrl-C.
        pass

    def request_stop(self, signum: int | None = None, frame: Any = None) -> None:
        """Stop after the current job (RQ's warm shutdown, without touching signals)."""
        self._stop_requested = True

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        """Wait for a job, waking every second to see whether a stop was asked for.

        RQ's own stop path raises from a signal handler in the main thread; a worker
        thread has no such handler, so it polls. None (no job, stop) ends `work()`.
        """
        while not self._stop_requested:
            found: tuple[Job, Queue] | None = super().dequeue_job_and_maintain_ttl(
                timeout, max_idle_time=_IDLE_WAKE_SECONDS
            )
            if found is not None:
                return found
        return None

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run the job here, heartbeating beside it."""
        execution = self.prepare_execution(job)
        self._job_done.clear()
        beats = threading.Thread(
            target=self._heartbeats, args=(job, execution), name=f"{self.name}-beat", daemon=True
        )
        beats.start()
        try:
            self.perform_job(job, queue, execution)
        finally:
            self._stop_heartbeats()
            beats.join()
        self.set_state(WorkerStatus.IDLE)

    def _heartbeats(self, job: Job, execution: Any) -> None:
        while not self._job_done.wait(self.job_monitoring_interval):
            with self._beat_lock:
                if self._job_done.is_set():
                    return
                try:
                    self.maintain_heartbeats(job, execution)
                except Exception:
                    log.warning("heartbeat for job %s failed", job.id, exc_info=True)

    def _stop_heartbeats(self) -> None:
        with self._beat_lock:
            self._job_done.set()

    # RQ removes the execution right after these; no heartbeat may re-create it.
    def handle_job_success(self, *args: Any, **kwargs: Any) -> None:
        """Stop heartbeats, then record the success."""
        self._stop_heartbeats()
        super().handle_job_success(*args, **kwargs)

    def handle_job_failure(self, *args: Any, **kwargs: Any) -> None:
        """Stop heartbeats, then record the failure."""
        self._stop_heartbeats()
        super().handle_job_failure(*args, **kwargs)


class WorkerThread:
    """One `ThreadWorker` on some queues, in a daemon thread."""

    def __init__(self, queues: Iterable[Queue], connection: Redis, name: str) -> None:
        self.worker = ThreadWorker(queues, connection=connection)
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        self.worker.work(logging_level="WARNING", with_scheduler=False)

    def start(self) -> WorkerThread:
        """Start working."""
        self.thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the worker to stop after its current job and wait a little for it."""
        self.worker.request_stop()
        self.thread.join(timeout)


def stop_workers(workers: Iterable[WorkerThread], timeout: float = 10.0) -> None:
    """Ask every worker to stop at once, then wait for them all."""
    workers = list(workers)
    for worker in workers:
        worker.worker.request_stop()
    for worker in workers:
        worker.thread.join(timeout)


class Clock:
    """What a worker's scheduler and `agentbot cron` do, ticking in a thread.

    Each tick moves due retries and scheduled jobs onto their queues and enqueues the
    periodic jobs (the reconciler, digests) that are due.
    """

    def __init__(
        self,
        connection: Redis,
        queue_names: Iterable[str],
        cron: CronScheduler | None = None,
        interval: float = 1.0,
    ) -> None:
        self.scheduler = RQScheduler(
            list(queue_names), connection=connection, logging_level=logging.WARNING
        )
        self.cron = cron
        self.interval = interval
        self._stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="clock", daemon=True)

    def tick(self) -> None:
        """One pass: scheduled jobs first, then periodic ones."""
        if not self.scheduler.acquired_locks:
            self.scheduler.acquire_locks()  # type: ignore[no-untyped-call]
        self.scheduler.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]
        if self.cron is not None:
            self.cron.enqueue_jobs()

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.tick()
            except Exception:
                log.warning("scheduler tick failed", exc_info=True)

    def start(self) -> Clock:
        """Start ticking."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop ticking and give the locks back."""
        self._stopped.set()
        self.thread.join(5)
        try:
            self.scheduler.release_locks()  # type: ignore[no-untyped-call]
        except Exception:
            log.debug("could not release scheduler locks", exc_info=True)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("bot http: " + format, *args)


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class WSGIThread:
    """A WSGI app on a threaded loopback server, one thread per request."""

    def __init__(self, app: WSGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = make_server(
            host, port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="bot-http", daemon=True
        )

    @property
    def url(self) -> str:
        """The server's root URL, without a trailing slash."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> WSGIThread:
        """Serve in the background."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
