"""A worker serves its keep-alive connections in turn, through the Dockerfile's command.

A gevent greenlet gives up the worker only when it waits for I/O. A connection
whose next requests are already in the socket buffer (pipelined, or a busy
client on keep-alive) would be served to the end before the worker's other
connections got a turn, or a new connection was even accepted; gunicorn.conf.py's
post_request hook lets the event loop run after each request. Checked by order,
not by time: one worker, connection A pipelines 40 predictions in one write; once
its first answer arrives, connection B connects and sends one bad request
(answered 400). The app logs each request as it is answered, so the log says how
many of A's requests went before B's.
"""
from __future__ import annotations

import json
import socket
import time

from testing_support.container_command import (
    parse_dockerfile, pen_drawing_pngs, predict_body, run_container_command, stage_image_files, wait_for_status,
)

PIPELINED = 40


def _request(body: bytes) -> bytes:
    return (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def _read_responses(sock: socket.socket, count: int, deadline: float) -> bytes:
    """Read until `count` response heads have arrived (bodies are small and follow at once)."""
    data = b""
    sock.settimeout(5)
    while data.count(b"HTTP/1.1 ") < count or not data.endswith(b"}\n"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{data.count(b'HTTP/1.1 ')} of {count} responses")
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_a_pipelining_client_does_not_hold_the_worker(pen_digits_path, tmp_path):
    spec = parse_dockerfile()
    workdir = stage_image_files(tmp_path / "app", spec)
    # The smallest page drawings, so all 40 requests sit in the socket buffer at once.
    png = min((png for _, png in pen_drawing_pngs(pen_digits_path, per_label=1)), key=len)
    with run_container_command(workdir, tmp_path / "server.log", spec=spec, workers=1,
                               LABELS_DIR=str(tmp_path / "labels"), PREDICT_RATE_LIMIT="off") as container:
        wait_for_status(container.port, "/readyz", container.process, timeout=300)
        first = socket.create_connection(("127.0.0.1", container.port))
        second = None
        try:
            first.sendall(_request(predict_body(png)) * PIPELINED)
            # The other client arrives while the worker is busy with the first's requests:
            # its connection has to be accepted too, which takes the worker polling for I/O.
            assert first.recv(1, socket.MSG_PEEK) == b"H"
            second = socket.create_connection(("127.0.0.1", container.port))
            second.sendall(_request(b'{"image": "not a drawing"}'))
            deadline = time.monotonic() + 60
            assert _read_responses(second, 1, deadline).startswith(b"HTTP/1.1 400")
            answers = _read_responses(first, PIPELINED, deadline)
            assert answers.count(b"HTTP/1.1 200") == PIPELINED
        finally:
            first.close()
            if second is not None:
                second.close()
        log = [json.loads(line) for line in container.log_lines() if line.startswith("{")]
    statuses = [record["status"] for record in log if record.get("path") == "/predict"]
    assert statuses.count(200) == PIPELINED and statuses.count(400) == 1, statuses
    served_before = statuses.index(400)
    # In turn: B waits for A's request in progress, a greenlet switch or two, not for all 40.
    assert served_before <= 5, f"{served_before} of the pipelined requests were answered before the other client's"
