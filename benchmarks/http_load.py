"""A closed-loop HTTP load: N clients, each sending its next request when the
last one is answered, over one kept-alive connection per client (as Cloud
Run's front end reuses connections to an instance).

http.client rather than requests: the load generator shares the CPU with the
server it measures, so it should spend as little of it as possible.
"""
from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class LoadResult:
    clients: int
    seconds: float
    latencies_s: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    connection_errors: int = 0

    @property
    def requests(self) -> int:
        return len(self.latencies_s)

    @property
    def errors(self) -> int:
        return self.connection_errors + sum(n for status, n in self.statuses.items() if status != 200)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(np.asarray(self.latencies_s) * 1000.0, q)) if self.latencies_s else float("nan")


def post_load(port: int, path: str, bodies: list[bytes], clients: int, seconds: float) -> LoadResult:
    """POST `bodies` (in turn) to `path` from `clients` threads for `seconds`."""
    result = LoadResult(clients, seconds)
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    headers = {"Content-Type": "application/json"}

    def client(index: int) -> None:
        latencies, statuses, failures = [], {}, 0
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        i = index
        while time.perf_counter() < deadline:
            body = bodies[i % len(bodies)]
            i += 1
            started = time.perf_counter()
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                failures += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            latencies.append(time.perf_counter() - started)
            statuses[response.status] = statuses.get(response.status, 0) + 1
        connection.close()
        with lock:
            result.latencies_s.extend(latencies)
            result.connection_errors += failures
            for status, n in statuses.items():
                result.statuses[status] = result.statuses.get(status, 0) + n

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - started
    return result
