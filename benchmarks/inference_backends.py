"""LiteRT in a threaded worker: an interpreter per thread, or one behind a lock?

A LiteRT interpreter must not run two calls at once. Two ways to share a model
between a gunicorn worker's threads:
  - per thread (what digit_recognition.inference.LiteRTClassifier does): each
    thread makes its own interpreter on its first call;
  - locked (the baseline, same run): one interpreter, one lock around
    set_tensor / invoke / get_tensor.
For 1, 2, 4 and 8 threads, each calling the model on one digit in a closed
loop, prints calls per second, the p50/p99 of a call, and the memory one more
interpreter costs. Also the process's time to import LiteRT and load the model.

    python benchmarks/inference_backends.py [--seconds 3]
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

started = time.perf_counter()
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

IMPORT_S = time.perf_counter() - started

from testing_support.container_command import memory_kib  # noqa: E402
from digit_recognition.inference import LiteRTClassifier  # noqa: E402
from digit_recognition.model_files import tflite_path_for  # noqa: E402
from flask_app.config import DEFAULT_MODEL_PATH  # noqa: E402


class LockedInterpreter:
    """The baseline: one interpreter for every thread, one call at a time."""

    def __init__(self, content: bytes):
        self.interpreter = Interpreter(model_content=content, num_threads=1)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.lock = threading.Lock()

    def predict_probabilities(self, images: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(images, dtype=np.float32).reshape(-1, 28, 28, 1)
        with self.lock:
            self.interpreter.set_tensor(self.input, batch)
            self.interpreter.invoke()
            return self.interpreter.get_tensor(self.output)


def closed_loop(classifier, threads: int, seconds: float, digit: np.ndarray):
    """Calls per second and every call's latency, `threads` threads calling at once."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)
    deadline = [0.0]

    def run(mine: list[float]):
        classifier.predict_probabilities(digit)  # a per-thread interpreter is made here, untimed
        barrier.wait()
        while time.perf_counter() < deadline[0]:
            call_started = time.perf_counter()
            classifier.predict_probabilities(digit)
            mine.append(time.perf_counter() - call_started)

    workers = [threading.Thread(target=run, args=(latencies[i],)) for i in range(threads)]
    for worker in workers:
        worker.start()
    deadline[0] = time.perf_counter() + seconds
    barrier.wait()
    for worker in workers:
        worker.join()
    every = np.concatenate([np.asarray(lat) for lat in latencies]) * 1000.0
    return len(every) / seconds, every


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", default=os.environ.get("MODEL_PATH", str(DEFAULT_MODEL_PATH)))
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()

    path = tflite_path_for(args.model_path)
    load_started = time.perf_counter()
    per_thread = LiteRTClassifier.load(path)
    load_s = time.perf_counter() - load_started
    locked = LockedInterpreter(path.read_bytes())
    digit = np.random.default_rng(0).uniform(0, 1, (1, 28, 28)).astype(np.float32)
    print(f"CPUs: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}; import LiteRT {IMPORT_S * 1000:.0f} ms, "
          f"load the model (first interpreter) {load_s * 1000:.0f} ms")

    before = memory_kib(os.getpid())["RssAnon"]
    extra = [LiteRTClassifier.load(path) for _ in range(4)]
    for classifier in extra:
        classifier.predict_probabilities(digit)
    per_interpreter = (memory_kib(os.getpid())["RssAnon"] - before) / len(extra) / 1024
    print(f"memory per interpreter: {per_interpreter:.1f} MiB")

    print(f"\n{'threads':>7}  {'per thread: calls/s':>20} {'p50':>6} {'p99 ms':>7}   "
          f"{'locked (baseline): calls/s':>27} {'p50':>6} {'p99 ms':>7}")
    for threads in (1, 2, 4, 8):
        row = []
        for classifier in (per_thread, locked):
            rate, latencies = closed_loop(classifier, threads, args.seconds, digit)
            row.append(f"{rate:>{20 if classifier is per_thread else 27}.0f} "
                       f"{np.percentile(latencies, 50):6.2f} {np.percentile(latencies, 99):7.2f}")
        print(f"{threads:>7}  {row[0]}   {row[1]}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
