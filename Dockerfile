# The digit-recognition web app, as Cloud Run runs it (and `docker run` does):
#   docker build -t digit-app .
#   docker run --rm -p 8080:8080 digit-app        # then open http://localhost:8080
# tests/test_container_command.py runs this file's CMD, with the files its COPY
# lines take, on every test run; see the README for Cloud Run.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8080 \
    LABELS_DIR=/data/labels

WORKDIR /app

# Dependencies first, so code changes rebuild only the small layers below.
# Only what serving needs: LiteRT runs the model's .tflite, so no TensorFlow
# (~0.2 GB of packages instead of ~2 GB; training uses requirements.txt).
COPY requirements-serve.txt ./
RUN pip install --no-cache-dir -r requirements-serve.txt

# An unprivileged user with a fixed uid: a Cloud Storage volume mounted at
# LABELS_DIR is given to it with mount-options "uid=10001;gid=10001".
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home app \
    && mkdir -p /data/labels \
    && chown app:app /data/labels

# Code and model stay owned by root: the service reads them and cannot change
# them. chmod makes them readable whatever their mode in the build context (a
# freshly trained model file is private to its writer); compileall saves each
# worker compiling the app's modules at every cold start.
COPY utils.py gunicorn.conf.py ./
COPY digit_recognition/ digit_recognition/
COPY flask_app/ flask_app/
RUN python -m compileall -q digit_recognition flask_app utils.py \
    && chmod -R a+rX /app

USER 10001:10001
EXPOSE 8080

# Workers: 2, one per core. With TensorFlow and gthread workers, 2 x 4
# threads was measured best (benchmarks/choose_workers.py: 218 req/s against
# 152 for 1 x 4 and 211 for 3 x 4, 8 clients, 2 cores). Serving with LiteRT
# (gthread, before gunicorn.conf.py switched to gevent workers, where
# --threads does not apply), a request cost ~3.3 ms of server CPU instead of
# ~4.5 (benchmarks/latency.py, same run) and a worker ~90 MiB instead of
# ~545 MiB, so workers are now cheap; but on the 2-core machine, shared with
# other jobs (load average 16-20), two runs of choose_workers.py over 1 x 4,
# 2 x 1, 2 x 2, 2 x 4, 2 x 8, 3 x 2 and 4 x 2 could not rank them (one
# configuration's rounds varied 10-190 req/s; server CPU per request 4-5 ms in
# every one; a later run, 3 gevent workers against 2: 1.03x the requests,
# 5.47 against 5.94 ms CPU per request). So one worker per core stays: the
# GIL-bound parts of a request (decoding, Flask, JSON) run in parallel only
# across processes. Each worker
# makes one LiteRT interpreter per OS thread (~8 MiB), after the fork; its
# gevent greenlets share it (digit_recognition/inference.py). On Cloud Run:
# --cpu 2, --concurrency 8. No --preload (gunicorn.conf.py says why).
# --timeout 0: Cloud Run enforces the request timeout itself.
# Shell form so $PORT (set by Cloud Run) expands; exec so gunicorn replaces the
# shell, is PID 1 and receives Cloud Run's SIGTERM for a graceful stop.
# hadolint ignore=DL3025
CMD exec gunicorn --config gunicorn.conf.py --bind :$PORT --workers 2 --threads 4 --timeout 0 flask_app.app:app
