"""A real HTTP receiver for webhook tests: http.server in a thread on 127.0.0.1.

It records every request and answers from a script: a list of (status, headers) or
("sleep"/"trickle", seconds) steps, then the default answer for the rest; a step with
`together=N` holds its answer until N requests are in, so N attempts overlap for real.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    answered: int = 0  # the status it was answered with


@dataclass
class Step:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    sleep: float = 0.0  # before answering
    trickle: float = 0.0  # send the status line a byte at a time over this long
    together: int = 0  # hold the answer until this many requests are in (up to 10 s)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # The sender closes a kept-alive connection without reading our body: the reset
        # that follows is the end of that connection, not a failure worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionResetError):
            super().handle_error(request, client_address)


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: list[Step] = []
        self.default = Step()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    step = receiver.script.pop(0) if receiver.script else receiver.default
                    receiver.received.append(
                        Received(
                            self.path, {k.lower(): v for k, v in self.headers.items()}, body, step.status
                        )
                    )
                    receiver._arrived.notify_all()
                    if step.together:
                        receiver._arrived.wait_for(
                            lambda: len(receiver.received) >= step.together, timeout=10
                        )
                if step.sleep:
                    time.sleep(step.sleep)
                if step.trickle:
                    line = f"HTTP/1.1 {step.status} Slow\r\n".encode()
                    pause = step.trickle / len(line)
                    try:
                        for byte in line:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(pause)
                    except OSError:
                        pass
                    self.close_connection = True
                    return
                payload = b"received" if step.status < 300 else b"no thanks"
                self.send_response(step.status)
                for name, value in step.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/creditledger"

    def answer(self, *steps: Step, default: Step | None = None) -> None:
        with self._lock:
            self.script = list(steps)
            if default is not None:
                self.default = default

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
