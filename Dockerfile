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

# Workers x threads, measured on the 2-core development machine with
# benchmarks/choose_workers.py (the CMD below with only these two changed; 8
# concurrent clients on POST /predict with page-sized pen drawings; 3 rounds x
# 5 s each, interleaved; the machine was also training a model, so compare rows
# with each other, not with a quiet machine):
#   workers x threads  req/s  p50 ms  p99 ms  CPU ms/req  own memory per worker
#         1 x 1          98     64     322      7.0        212 MiB  (baseline)
#         1 x 4         152     47     205      6.2        225 MiB
#         1 x 8         135     48     233      6.5        240 MiB
#         2 x 2         185     38     180      6.4        218 MiB
#         2 x 4         218     29     164      6.2        225 MiB  <- chosen
#         2 x 8         214     30     189      6.2        242 MiB
#         3 x 4         211     29     254      6.6        226 MiB
# A second run ranked them alike: two workers ahead (2 x 4: 191 req/s, p99
# 100 ms; 2 x 8: 208 req/s, p99 109 ms, within the spread between rounds),
# one worker at 1 x 1's level or a little above, three workers behind two.
# One worker per core: the GIL-bound parts of a request (decoding, Flask,
# JSON) run in parallel only across processes, and a third worker on two
# cores adds memory, not throughput. Four threads keep a worker's core busy
# while some of its requests wait on the network or inside TensorFlow (which
# releases the GIL); eight add memory and nothing else. Each worker also maps
# ~390 MiB of TensorFlow's libraries, shared between workers: two workers are
# ~0.65 GiB resident (PSS) in all. On Cloud Run: --cpu 2, --memory 2Gi (room
# for Cloud Storage FUSE's write buffers), --concurrency 8 (= 2 x 4).
# No --preload: TensorFlow is not fork-safe, so each worker loads its own model.
# --timeout 0: Cloud Run enforces the request timeout itself.
# Shell form so $PORT (set by Cloud Run) expands; exec so gunicorn replaces the
# shell, is PID 1 and receives Cloud Run's SIGTERM for a graceful stop.
# hadolint ignore=DL3025
CMD exec gunicorn --config gunicorn.conf.py --bind :$PORT --workers 2 --threads 4 --timeout 0 flask_app.app:app
