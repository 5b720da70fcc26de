"""Real Celery workers and a real Redis broker for end-to-end tests.

Each test gets its own redis-server on a free port, so a test can stop and restart its
broker without touching anyone else's; workers are `celery worker` processes running
against the pytest database.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from celery import current_app
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
CELERY = str(Path(sys.executable).parent / "celery")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Broker:
    """A private redis-server for one test."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [
                server,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, what=f"redis on port {self.port}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


class Worker:
    """A `celery worker` process (solo pool: the task runs in the process we kill)."""

    def __init__(
        self,
        name: str,
        broker: Broker,
        logdir: Path,
        queues: str = "scoring,celery",
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.broker = broker
        self.log = logdir / f"worker-{name}.log"
        self.queues = queues
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        db = connection.settings_dict
        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": "postgres://{}@{}:{}/{}".format(
                    db["USER"], db["HOST"] or "127.0.0.1", db["PORT"] or 5432, db["NAME"]
                ),
                "CELERY_BROKER_URL": self.broker.url,
                # Small so that a killed worker's message comes back within the test.
                "CELERY_TASK_TIME_LIMIT": "4",
                "CELERY_RETRY_BACKOFF_MAX": "1",
                "CELERY_VISIBILITY_TIMEOUT": "8",
                "CELERY_UNACKED_RESTORE_INTERVAL": "1",
                "CACHE_URL": f"rediscache://127.0.0.1:{self.broker.port}/1",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self) -> Worker:
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [
                CELERY,
                "-A",
                "creditledger",
                "worker",
                "-P",
                "solo",
                "-Q",
                self.queues,
                "-n",
                f"{self.name}@%h",
                "--without-mingle",
                "--without-gossip",
                "--loglevel=INFO",
            ],
            cwd=ROOT,
            env=self.env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(
            lambda: "ready." in self.output() or self.process.poll() is not None, what=f"worker {self.name}"
        )
        assert self.process.poll() is None, self.output()
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill9(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill9()


def point_app_at(url: str) -> None:
    """Make this (the test) process publish to `url`.

    Celery reads CELERY_BROKER_URL from the environment before its own settings, so the
    variable is what must change; then the cached connection pools are dropped.
    """
    os.environ["CELERY_BROKER_URL"] = url
    app = current_app._get_current_object()
    app.conf.broker_url = url
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None
