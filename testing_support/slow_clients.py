"""Slow-header ("slowloris") connections and timed normal requests beside them.

Used by tests/test_hardening_server.py and benchmarks/slow_clients.py: a server
that gives each connection a worker thread from the moment it arrives runs out
of threads after a handful of slow clients, and every normal request waits.
"""
from __future__ import annotations

import http.client
import socket
import threading
import time



class SlowHeaderClients:
    """`count` connections that each send a request head one header line every
    `line_interval` seconds and never finish it; a connection the server
    closes is opened again at once. Use as a context manager.

    `closed_by_server` counts the connections the server hung up on.
    """

    def __init__(self, port: int, count: int = 20, line_interval: float = 5.0):
        self.port, self.count, self.line_interval = port, count, line_interval
        self.closed_by_server = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._hold, daemon=True) for _ in range(count)]
        self._lock = threading.Lock()

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.line_interval + 5)

    def _hold(self) -> None:
        while not self._stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                    sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
                    n = 0
                    while not self._stop.wait(self.line_interval):
                        sock.sendall(f"X-{n}: a\r\n".encode())
                        n += 1
                        if self._server_hung_up(sock):
                            break
            except OSError:
                pass  # refused, reset or broken pipe: the server hung up
            if not self._stop.is_set():
                with self._lock:
                    self.closed_by_server += 1

    @staticmethod
    def _server_hung_up(sock: socket.socket) -> bool:
        sock.settimeout(0.0)
        try:
            return sock.recv(4096) == b""  # an error page also ends with a close
        except BlockingIOError:
            return False  # nothing to read: still open
        finally:
            sock.settimeout(2)


def timed_predicts(port: int, bodies: list[bytes], clients: int, seconds: float,
                   request_timeout: float) -> tuple[list[float], int]:
    """(latencies in s, failures): `clients` threads POST /predict in a closed
    loop for `seconds`, each on a new connection, as a browser's first request
    comes; a failure (timeout, error, non-200) is recorded as `request_timeout`."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(index: int) -> None:
        i = index
        while time.perf_counter() < deadline:
            body = bodies[i % len(bodies)]
            i += 1
            started = time.perf_counter()
            ok = False
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=request_timeout)
            try:
                connection.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                pass
            finally:
                connection.close()
            elapsed = time.perf_counter() - started if ok else request_timeout
            with lock:
                latencies.append(elapsed)
                failures[0] += not ok

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, failures[0]
