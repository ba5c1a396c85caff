"""Running a trained model: LiteRT in the server, Keras where TensorFlow is anyway.

Training stays Keras/TensorFlow; every saved model also gets a `.tflite` beside
its `.keras` (digit_recognition.conversion), checked to give the same
probabilities. The server runs that file with LiteRT (`ai-edge-litert`): about
a quarter of TensorFlow's time per digit, an import of milliseconds instead of
seconds, and an install of ~0.2 GB instead of ~2 GB (figures in the README).

`load_classifier(model_path, backend)` returns an object with
`predict_probabilities(images (N, 28, 28) float32 in [0, 1]) -> (N, C)`, where C
is the model's number of outputs (read from the model, never assumed). This
module imports neither TensorFlow nor LiteRT at import time: the Keras backend
imports TensorFlow only when it is chosen, so a server running LiteRT never
loads it.
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
import tempfile
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from .model_files import keras_path_for, read_metadata, tflite_matches_metadata, tflite_path_for

BACKENDS = ("auto", "litert", "keras")
logger = logging.getLogger(__name__)


class BackendUnavailableError(RuntimeError):
    """The backend asked for cannot run this model here (file or runtime missing)."""


class LiteRTClassifier:
    """A `.tflite` model run by LiteRT's interpreter, from a pool of interpreters.

    A LiteRT interpreter holds its input and output buffers, so one instance
    must never run two calls at once. Each call takes an idle interpreter from
    a pool (or makes one, ~3 ms, ~8 MiB) and gives it back, rather than all
    threads sharing one behind a lock: `invoke()` releases the GIL, so a
    threaded worker's threads run digits in parallel
    (benchmarks/inference_backends.py measures both). The pool holds as many
    interpreters as calls ever ran at once, whatever makes the threads:
    gunicorn's pooled threads, gevent's greenlets (which never switch inside a
    call, so a worker's share one) or a thread per request. Interpreters are
    also made per process: one made before a fork is never used after it,
    since native runtimes are not promised to survive a fork.
    """


    backend = "litert"

    def __init__(self, model_content: bytes, path: str | os.PathLike | None = None, num_threads: int = 1):
        # One thread per interpreter: a digit is ~16M multiply-adds, too small
        # to split, and the server's parallelism is its workers and threads.
        self.path = Path(path) if path is not None else None
        self._content = model_content
        self._num_threads = num_threads
        self._idle: list[SimpleNamespace] = []  # interpreters no call is using
        self._idle_lock = threading.Lock()
        self._runners_pid = os.getpid()
        with native_stderr_to_log():
            runner = self._acquire()  # fails here, at load, on a broken file
        self._release(runner)
        details = runner.interpreter.get_input_details()[0]
        self.input_shape = tuple(int(d) for d in details["shape_signature"][1:])
        self.num_classes = int(runner.interpreter.get_output_details()[0]["shape_signature"][-1])

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LiteRTClassifier":
        return cls(Path(path).read_bytes(), path)

    def _acquire(self) -> SimpleNamespace:
        """An interpreter for this call alone: an idle one, or a new one.

        A pool, not one per thread: a server that starts a thread per request
        (Werkzeug's) would otherwise make an interpreter (~8 MiB) per request
        and keep them all; with a pool there are only ever as many as calls
        ran at once. Under gevent a call never yields mid-inference, so a
        worker's greenlets share one.
        """
        with self._idle_lock:
            if self._runners_pid != os.getpid():  # forked: the parent's interpreters are not ours
                self._idle, self._runners_pid = [], os.getpid()
            if self._idle:
                return self._idle.pop()
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_content=self._content, num_threads=self._num_threads)
        interpreter.allocate_tensors()
        return SimpleNamespace(interpreter=interpreter, pid=os.getpid(),
                               input_index=interpreter.get_input_details()[0]["index"],
                               output_index=interpreter.get_output_details()[0]["index"],
                               batch=int(interpreter.get_input_details()[0]["shape"][0]))

    def _release(self, runner: SimpleNamespace) -> None:
        with self._idle_lock:
            if runner.pid == self._runners_pid:
                self._idle.append(runner)

    @property
    def interpreter_count(self) -> int:
        """Interpreters made in this process and now idle (all of them between calls)."""
        with self._idle_lock:
            return len(self._idle) if self._runners_pid == os.getpid() else 0

    def predict_probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) or (N, 28, 28, 1) floats in [0, 1] -> (N, C) probabilities."""
        batch = np.ascontiguousarray(images, dtype=np.float32).reshape((-1,) + self.input_shape)
        if len(batch) == 0:
            return np.zeros((0, self.num_classes), dtype=np.float32)
        runner = self._acquire()
        try:
            interpreter = runner.interpreter
            if len(batch) != runner.batch:
                # Re-planning buffers costs ~0.1 ms; a server sends batches of one
                # (or a few parts), so this is rare outside evaluation.
                interpreter.resize_tensor_input(runner.input_index, batch.shape)
                interpreter.allocate_tensors()
                runner.batch = len(batch)
            interpreter.set_tensor(runner.input_index, batch)
            interpreter.invoke()
            return interpreter.get_tensor(runner.output_index)  # a copy: the buffer is reused
        finally:
            self._release(runner)


@contextlib.contextmanager
def native_stderr_to_log():
    """Send what native code writes to stderr meanwhile to this module's logger.

    LiteRT's C++ runtime prints "INFO: Created TensorFlow Lite XNNPACK delegate
    for CPU." straight to file descriptor 2 the first time a process creates
    an interpreter, with no setting to silence it; the service's log must be
    one JSON object per line. Used around the first interpreter only (at load,
    before the server's threads start): the message is printed once per process.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield  # no usable stderr: nothing to redirect
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode("utf-8", errors="replace").splitlines():
                if line.strip():
                    logger.debug("LiteRT: %s", line.strip())


class KerasClassifier:
    """The `.keras` model through TensorFlow (DigitClassifier's traced graph).

    Thread-safe (TensorFlow's executor is), but not fork-safe: a process that
    forks must load it after the fork.
    """

    backend = "keras"

    def __init__(self, path: str | os.PathLike):
        from .model import DigitClassifier  # TensorFlow: imported only when chosen

        self.path = Path(path)
        self._classifier = DigitClassifier.load(self.path)
        self.model = self._classifier.model
        self.num_classes = int(self.model.output_shape[-1])

    def predict_probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) or (N, 28, 28, 1) floats in [0, 1] -> (N, C) probabilities."""
        return self._classifier.predict_probabilities(images)


def litert_installed() -> bool:
    return importlib.util.find_spec("ai_edge_litert") is not None


def tensorflow_installed() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


def litert_problem(model_path: str | os.PathLike) -> str | None:
    """Why LiteRT cannot serve the model at `model_path` (None: it can)."""
    tflite = tflite_path_for(model_path)
    if not tflite.exists():
        return (f"{tflite} does not exist (make it with: python -m digit_recognition convert "
                f"{keras_path_for(model_path)})")
    if not litert_installed():
        return "the LiteRT runtime (ai-edge-litert) is not installed"
    if not tflite_matches_metadata(read_metadata(model_path), tflite.read_bytes()):
        return (f"{tflite} is not the file its metadata names (left over from another model?); "
                f"convert again: python -m digit_recognition convert {keras_path_for(model_path)}")
    return None


def choose_backend(model_path: str | os.PathLike, requested: str = "auto") -> tuple[str, str | None]:
    """(backend, why not LiteRT) that load_classifier would use, loading nothing.

    "auto" is LiteRT when the model has a usable `.tflite` and the runtime is
    installed, Keras otherwise. `model_path` may name the .keras or the .tflite.
    """
    if requested not in BACKENDS:
        raise ValueError(f"unknown inference backend {requested!r}; one of {', '.join(BACKENDS)}")
    if requested == "keras":
        return "keras", None
    problem = litert_problem(model_path)
    if requested == "litert":
        return "litert", problem
    return ("keras", problem) if problem else ("litert", None)


def load_classifier(model_path: str | os.PathLike, backend: str = "auto"):
    """Load the model at `model_path` (its .keras or .tflite) with `backend`.

    Raises BackendUnavailableError, saying why, when the backend asked for (or,
    for "auto", both) cannot run here.
    """
    chosen, problem = choose_backend(model_path, backend)
    if chosen == "litert":
        if problem:
            raise BackendUnavailableError(f"INFERENCE_BACKEND=litert: {problem}")
        return LiteRTClassifier.load(tflite_path_for(model_path))
    if problem and backend == "auto":
        logger.warning("serving with Keras/TensorFlow, not LiteRT: %s", problem)
    keras_file = keras_path_for(model_path)
    if not tensorflow_installed():
        reason = f"and LiteRT cannot serve it: {problem}" if problem else "(pip install -r requirements.txt)"
        raise BackendUnavailableError(
            f"the Keras backend needs TensorFlow, which is not installed here {reason}")
    if not keras_file.exists():
        raise BackendUnavailableError(f"{keras_file} does not exist")
    return KerasClassifier(keras_file)
