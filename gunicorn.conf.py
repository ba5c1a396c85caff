"""Gunicorn settings the Dockerfile's command loads with `--config gunicorn.conf.py`.

The settings an operator tunes per deployment (bind address, workers, threads,
timeout) are on the command line in the Dockerfile, where they are measured
and explained; this file holds what follows from running on Cloud Run.
"""
import os

# No preload. With LiteRT the model itself would allow it (interpreters are
# made per process and thread, after the fork: digit_recognition/inference.py,
# tests/test_inference_backends.py), and it saved ~1 s of wall-clock start-up
# on the loaded 2-core machine at the same CPU (benchmarks/cold_start.py
# --compare-no-preload, before the worker class below). But the gevent worker
# patches the standard library when the worker starts, which must come before
# the app is imported; and with INFERENCE_BACKEND=keras, TensorFlow is not
# fork-safe. So each worker imports the app and loads its model after the fork.
preload_app = False

# Slow clients must not hold the workers. A threaded worker gives each
# connection a thread as soon as its first bytes arrive, so 8 connections that
# trickle a request head (a header line every few seconds, never finishing)
# take all 2 x 4 threads and every other request waits (benchmarks/
# slow_clients.py: p99 5 s, i.e. timed out, with 20 of them). Under `docker run
# -p 8080:8080` nothing buffers requests in front of gunicorn, so, as
# gunicorn's FAQ advises for unbuffered requests, the worker is an async one:
# gevent reads each request head in its own greenlet, which costs memory, not
# a thread, and hands the request to the app only once the head is complete
# (same run: p99 11-20 ms with the 20 slow clients). The app is the same WSGI
# app; gevent patches the standard library in each worker before the app is
# imported (no --preload). The cost: a worker now runs one request at a time
# (its greenlets take turns, and a model call blocks the worker while it
# runs), where its threads could decode one drawing while another was in
# TensorFlow. Server CPU per request is about the same (benchmarks/
# slow_clients.py prints it); on this shared, busy 2-core machine 8 closed-loop
# clients got about half gthread's requests through in two runs, and split
# the rounds in a third (README). `--threads` in the CMD does not apply to
# this worker class. Re-measured once the request path was cheaper
# (benchmarks/choose_workers.py --configs 2x4,2x4:gthread,2x2:gthread, two
# runs, load average 8-11): server CPU per request 5.94 / 4.87 ms (gevent)
# against 5.63 / 4.84 (gthread 2 x 4) and 5.31 / 5.09 (gthread 2 x 2), the
# same within noise; throughput rounds spread 3-58 req/s for every class, with
# gthread ahead in most rounds but behind in others. With equal CPU per request a
# dedicated 2-core instance is CPU-bound either way, so the slow-client
# protection decides: gevent stays.
worker_class = "gevent"
# At most this many connections per worker (open, idle or slow), gunicorn's
# default made explicit: beyond it a worker stops accepting until one closes.
worker_connections = 1000
# The gevent worker reads every request head under a `keepalive`-second
# deadline (a new connection's first request included) and closes the
# connection when it runs out: this is the request-read timeout. 5 s is ample
# for any real client's head and for Cloud Run's front end reusing an idle
# connection, and bounds how long a slow client holds even a greenlet.
keepalive = 5


def post_request(worker, req, environ, resp):
    """Serve keep-alive connections in turn: let the worker's other greenlets run.

    A greenlet gives up the worker only when it waits for I/O. A client that
    sends its next request at once (keep-alive, under load) finds it already
    read, so its greenlet serves it without yielding and the worker's other
    connections wait: with 8 clients, p50 3.5 ms but p99 103 ms, against 32 ms
    for the threaded server as filed (benchmarks/latency.py). `idle()` waits
    until the event loop has polled for I/O and run what was ready (a new
    connection accepted, another client's request read); `sleep(0)` runs only
    what is already scheduled, so a client that connects meanwhile would still
    wait (tests/test_keepalive_fairness.py tells the two apart). Runs in the
    worker, after gevent's patching. Other worker classes (a benchmark's
    `--worker-class gthread`) are scheduled by the OS.
    """
    if type(worker).__module__ != "gunicorn.workers.ggevent":
        return
    from gevent import idle

    idle()


# Cloud Run sends SIGTERM, then SIGKILL 10 s later: let in-flight requests
# finish within that window instead of gunicorn's default 30 s.
graceful_timeout = 8

# X-Forwarded-For/-Proto are left to the app (TRUSTED_PROXIES, flask_app/
# security.py): gunicorn believes them only from loopback, its default.

# Each worker touches a heartbeat file on every loop. Under `docker run` the
# default temp dir is on the overlay filesystem, where those writes can stall a
# worker; /dev/shm is memory. (On Cloud Run the whole filesystem is memory.)
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# The run-time control socket (gunicornc) is not needed in a container, and
# would be one more thing listening, in a home directory that may be read-only.
control_socket_disable = True

# One JSON line per record on stdout (flask_app/logging_setup.py). Gunicorn's
# own messages (booting, worker exits) go through the same handler on the root
# logger; its access log is switched off because the app writes one line per
# request itself, with the fields Cloud Logging indexes.
_level = os.environ.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
loglevel = _level.lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": _level, "handlers": ["json_stdout"]},
    "loggers": {
        "gunicorn.error": {"level": _level, "handlers": [], "propagate": True},
        "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
    },
    "handlers": {
        "json_stdout": {"class": "flask_app.logging_setup.JsonStdoutHandler"},
    },
    "formatters": {},
}


# Gunicorn counts its access log as on whenever a logging config is given, as
# here, and then builds each request's access-log fields (a dict of the
# request's headers and timings) only for the CRITICAL level above to drop
# them: ~2% of a worker's time per /predict in a profile. This logger says it
# is off, so gunicorn skips building them.
from gunicorn.glogging import Logger as _GunicornLogger  # noqa: E402


class LoggerWithoutAccessLog(_GunicornLogger):
    def _compute_access_log_enabled(self):
        return False


logger_class = LoggerWithoutAccessLog

# One TensorFlow thread per worker: with one worker per core, TF's own thread
# pools only add hand-offs to a ~1 ms graph. Measured on the 2-core machine
# (POST /predict, Dockerfile CMD, 10 s per row): 1 client p50 8.47 -> 6.53 ms;
# 8 clients 260 -> 248 req/s (within run-to-run noise). The workers inherit
# these from the master; an operator's own setting wins.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")


# --- what gunicorn itself writes --------------------------------------------
# Gunicorn has no setting for these (its maintainers declined one for the
# Server header, benoitc/gunicorn#825), so the two functions that write them
# are replaced here, in the master, before the workers fork. tests/
# test_hardening.py checks both against the real server, so a gunicorn upgrade
# that renames them fails there.
import json  # noqa: E402

from gunicorn import util as _gunicorn_util  # noqa: E402
from gunicorn.http import wsgi as _gunicorn_wsgi  # noqa: E402

from flask_app.security_headers import SECURITY_HEADERS  # noqa: E402

_gunicorn_default_headers = _gunicorn_wsgi.Response.default_headers


def _default_headers_without_server(self):
    # No `Server: gunicorn`: the banner only tells a scanner which exploits to try.
    return [line for line in _gunicorn_default_headers(self) if not line.startswith("Server:")]


def _write_error_with_security_headers(sock, status_int, reason, mesg):
    # Gunicorn's own answer to a request too broken to reach the app (bad
    # request line, 414 URI too long, 431 too many or too long headers...):
    # JSON like every other error of this service, with the same security
    # headers, instead of an HTML page without them.
    body = json.dumps({"error": f"{reason}: {mesg}" if mesg else reason}).encode("ascii")
    head = [f"HTTP/1.1 {status_int} {reason}", "Connection: close",
            "Content-Type: application/json", f"Content-Length: {len(body)}", "Cache-Control: no-store",
            *(f"{name}: {value}" for name, value in SECURITY_HEADERS)]
    _gunicorn_util.write_nonblock(sock, ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)


_gunicorn_wsgi.Response.default_headers = _default_headers_without_server
_gunicorn_util.write_error = _write_error_with_security_headers
