"""The two ways of running a model: LiteRT (the server) and Keras (training).

The shipped .tflite must answer like the shipped .keras on real drawings; every
saved model gets its checked .tflite and metadata naming both; the server's
"auto" choice never runs a .tflite left over from another model; LiteRT's
interpreters survive threads and a fork; nothing assumes 10 outputs.
"""
from __future__ import annotations

import json
import multiprocessing
import sys
from concurrent.futures import ThreadPoolExecutor

import threading

import numpy as np
import pytest

from digit_recognition.conversion import (
    MAX_PROBABILITY_DIFFERENCE, ConversionError, check_conversion, convert_checked, to_tflite_bytes,
)
from digit_recognition.datasets import load_mnist, load_pen_digits, render_pen_digits
from digit_recognition.inference import (
    BackendUnavailableError, KerasClassifier, LiteRTClassifier, choose_backend, load_classifier,
)
from digit_recognition.model_files import metadata_path_for, read_metadata, tflite_path_for
from digit_recognition.preprocessing import preprocess_drawing
from flask_app.config import DEFAULT_MODEL_PATH
from testing_support.container_command import REPO_ROOT, pen_drawing_pngs


@pytest.fixture(scope="module")
def fixed_drawings(pen_digits_path, mnist_path) -> np.ndarray:
    """A fixed set of model inputs: pen drawings through the server's own
    preprocessing (3 per digit) and the first 300 MNIST test digits."""
    pen = [preprocess_drawing(png) for _, png in pen_drawing_pngs(pen_digits_path, per_label=3)]
    _, (x_test, _) = load_mnist(mnist_path)
    return np.concatenate([np.stack(pen), x_test[:300]]).astype(np.float32)


@pytest.fixture(scope="module")
def shipped_backends():
    return (LiteRTClassifier.load(tflite_path_for(DEFAULT_MODEL_PATH)), KerasClassifier(DEFAULT_MODEL_PATH))


def test_shipped_tflite_answers_like_the_shipped_keras_model(fixed_drawings, shipped_backends):
    litert, keras_backend = shipped_backends
    got, expected = litert.predict_probabilities(fixed_drawings), keras_backend.predict_probabilities(fixed_drawings)
    classes = len(read_metadata(DEFAULT_MODEL_PATH)["classes"])  # ten digits and "not a digit"
    assert got.shape == expected.shape == (len(fixed_drawings), classes)
    assert np.abs(got - expected).max() <= MAX_PROBABILITY_DIFFERENCE
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()
    assert set(range(10)) <= set(got.argmax(axis=1))  # the set exercises every digit


def test_shipped_metadata_names_both_files_and_the_check():
    metadata = read_metadata(DEFAULT_MODEL_PATH)
    assert metadata["files"]["keras"] == "digit_cnn.keras"
    assert metadata["files"]["tflite"] == "digit_cnn.tflite"
    assert metadata["conversion"]["different_answers"] == 0
    assert metadata["conversion"]["max_abs_difference"] <= MAX_PROBABILITY_DIFFERENCE
    assert metadata["conversion"]["samples"] >= 10_000  # MNIST test + pen drawings
    assert choose_backend(DEFAULT_MODEL_PATH) == ("litert", None)  # and it is the file named


def test_any_batch_size_in_any_order(fixed_drawings, shipped_backends):
    litert, _ = shipped_backends
    together = litert.predict_probabilities(fixed_drawings[:7])
    one_by_one = np.concatenate([litert.predict_probabilities(x[None]) for x in fixed_drawings[:7]])
    np.testing.assert_allclose(together, one_by_one, atol=1e-6)
    assert litert.predict_probabilities(np.zeros((0, 28, 28), np.float32)).shape == (0, litert.num_classes)
    # (N, 28, 28, 1) too
    assert litert.predict_probabilities(fixed_drawings[:2, :, :, None]).shape == (2, litert.num_classes)


def test_threads_each_get_their_own_interpreter_and_the_right_answers(fixed_drawings, shipped_backends):
    litert, _ = shipped_backends
    alone = litert.predict_probabilities(fixed_drawings)

    def classify(offset):
        order = np.roll(np.arange(len(fixed_drawings)), offset)
        out = np.empty_like(alone)
        for i in order:  # one at a time, interleaved with the other threads
            out[i] = litert.predict_probabilities(fixed_drawings[i][None])[0]
        return out

    with ThreadPoolExecutor(8) as pool:
        for result in pool.map(classify, range(0, 80, 10)):
            np.testing.assert_allclose(result, alone, atol=1e-6)


def _classify_in_child(classifier, images, queue):
    queue.put(classifier.predict_probabilities(images))


def test_a_classifier_loaded_before_fork_works_in_the_child(fixed_drawings):
    # gunicorn --preload: the master loads the app, the workers are forks. The
    # child must build its own interpreter, not use the parent's.
    litert = LiteRTClassifier.load(tflite_path_for(DEFAULT_MODEL_PATH))
    in_parent = litert.predict_probabilities(fixed_drawings[:20])
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_classify_in_child, args=(litert, fixed_drawings[:20], queue))
    child.start()
    in_child = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    np.testing.assert_allclose(in_child, in_parent, atol=1e-6)


def test_nothing_assumes_ten_classes(tmp_path):
    import keras

    # A v3-like model: 11 outputs (10 digits + "not a digit").
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(11, activation="softmax")])
    litert = LiteRTClassifier(to_tflite_bytes(model))
    assert litert.num_classes == 11
    images = np.random.default_rng(0).uniform(0, 1, (5, 28, 28)).astype(np.float32)
    assert litert.predict_probabilities(images).shape == (5, 11)
    check = check_conversion(model, to_tflite_bytes(model), images, "noise")
    assert check.passed and check.samples == 5


def test_a_different_model_fails_the_conversion_check():
    import keras

    def tiny(seed):
        keras.utils.set_random_seed(seed)
        return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                                 keras.layers.Dense(10, activation="softmax")])

    images = np.random.default_rng(1).uniform(0, 1, (20, 28, 28)).astype(np.float32)
    check = check_conversion(tiny(0), to_tflite_bytes(tiny(1)), images, "noise")
    assert not check.passed and check.max_abs_difference > MAX_PROBABILITY_DIFFERENCE


@pytest.fixture(scope="module")
def saved_model_dir(tmp_path_factory, pen_digits_path):
    """A small real model saved the way training saves one."""
    from digit_recognition.model import build_model
    from digit_recognition.training import save_model

    folder = tmp_path_factory.mktemp("saved")
    digits = load_pen_digits(pen_digits_path)[:60]
    x, _ = render_pen_digits(digits, np.random.default_rng(0), 1)
    save_model(build_model(seed=3), folder / "m.keras", {"model_version": "test-1"}, x, "60 pen drawings")
    return folder


def test_save_model_writes_keras_tflite_and_metadata_naming_both(saved_model_dir):
    metadata = json.loads(metadata_path_for(saved_model_dir / "m.keras").read_text())
    assert metadata["model_version"] == "test-1"
    assert metadata["files"]["keras"] == "m.keras" and metadata["files"]["tflite"] == "m.tflite"
    assert metadata["conversion"]["check_set"] == "60 pen drawings"
    assert metadata["conversion"]["samples"] == 60 and metadata["conversion"]["different_answers"] == 0
    assert not [p.name for p in saved_model_dir.iterdir() if p.name.startswith(".")]  # no temp files left
    litert = load_classifier(saved_model_dir / "m.keras")
    assert litert.backend == "litert"
    assert load_classifier(saved_model_dir / "m.keras", "keras").backend == "keras"
    assert load_classifier(saved_model_dir / "m.tflite", "litert").backend == "litert"  # either name


def test_a_tflite_left_over_from_another_model_is_never_served(saved_model_dir, tmp_path, caplog):
    import shutil

    for name in ("m.keras", "m.json"):
        shutil.copy(saved_model_dir / name, tmp_path / name)
    # The .keras and .json were replaced by a new model; the .tflite is the old one.
    shutil.copy(tflite_path_for(DEFAULT_MODEL_PATH), tmp_path / "m.tflite")
    backend, problem = choose_backend(tmp_path / "m.keras")
    assert backend == "keras" and "not the file its metadata names" in problem
    with caplog.at_level("WARNING"):
        assert load_classifier(tmp_path / "m.keras").backend == "keras"
    assert "not LiteRT" in caplog.text
    with pytest.raises(BackendUnavailableError, match="convert again"):
        load_classifier(tmp_path / "m.keras", "litert")
    # A new model's metadata that names no .tflite at all (written before
    # conversion existed, or by hand): the old .tflite beside it is not served either.
    metadata = json.loads((tmp_path / "m.json").read_text())
    metadata.pop("files")
    (tmp_path / "m.json").write_text(json.dumps(metadata))
    assert choose_backend(tmp_path / "m.keras")[0] == "keras"


def test_without_a_tflite_auto_serves_keras_and_litert_says_how_to_convert(saved_model_dir, tmp_path):
    import shutil

    shutil.copy(saved_model_dir / "m.keras", tmp_path / "m.keras")
    assert load_classifier(tmp_path / "m.keras").backend == "keras"
    with pytest.raises(BackendUnavailableError, match="python -m digit_recognition convert"):
        load_classifier(tmp_path / "m.keras", "litert")
    with pytest.raises(ValueError, match="unknown inference backend"):
        load_classifier(tmp_path / "m.keras", "onnx")


def test_convert_command_gives_an_existing_model_its_tflite(saved_model_dir, tmp_path, mnist_path):
    import shutil
    import subprocess

    shutil.copy(saved_model_dir / "m.keras", tmp_path / "m.keras")
    (tmp_path / "m.json").write_text(json.dumps({"model_version": "old-1"}))
    result = subprocess.run([sys.executable, "-m", "digit_recognition", "convert", str(tmp_path / "m.keras"),
                             "--mnist-path", mnist_path], capture_output=True, text=True, timeout=300,
                            cwd=REPO_ROOT, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    metadata = read_metadata(tmp_path / "m.keras")
    assert metadata["model_version"] == "old-1"  # kept
    assert metadata["conversion"]["check_set"] == "MNIST test 10000"
    assert load_classifier(tmp_path / "m.keras").backend == "litert"


def test_convert_checked_refuses_before_writing(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    # NaN inputs give NaN probabilities: the check cannot pass, nothing is returned.
    with pytest.raises(ConversionError, match="refused"):
        convert_checked(model, np.full((3, 28, 28), np.nan, np.float32), "NaNs")


GEVENT_PROBE = """
from gevent import monkey; monkey.patch_all()
import gevent, numpy as np
from digit_recognition.inference import LiteRTClassifier
from digit_recognition.model_files import tflite_path_for
from flask_app.config import DEFAULT_MODEL_PATH
litert = LiteRTClassifier.load(tflite_path_for(DEFAULT_MODEL_PATH))
images = np.random.default_rng(0).uniform(0, 1, (40, 28, 28)).astype(np.float32)
alone = litert.predict_probabilities(images)
def classify(offset):
    for i in np.roll(np.arange(40), offset):
        assert np.allclose(litert.predict_probabilities(images[i][None])[0], alone[i], atol=1e-6)
        gevent.sleep(0)  # let the other greenlets in between calls
gevent.joinall([gevent.spawn(classify, k) for k in range(20)], raise_error=True)
print("interpreters", litert.interpreter_count)
"""


def test_gevent_greenlets_share_their_threads_interpreter():
    # gunicorn's gevent worker makes threading.local greenlet-local: an
    # interpreter per greenlet would mean one per request. One per OS thread.
    import subprocess

    result = subprocess.run([sys.executable, "-c", GEVENT_PROBE], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "interpreters 1"


def test_a_thread_per_request_server_does_not_grow_an_interpreter_per_thread(fixed_drawings, shipped_backends):
    """Werkzeug (the tests' and benchmarks' live server) starts a thread per request:
    the interpreters must be pooled, not kept per thread (each is ~8 MiB)."""
    litert, _ = shipped_backends
    expected = litert.predict_probabilities(fixed_drawings[:1])
    before = litert.interpreter_count  # other tests' concurrent calls may have made several
    for _ in range(50):
        worker = threading.Thread(target=lambda: np.testing.assert_allclose(
            litert.predict_probabilities(fixed_drawings[:1]), expected, atol=1e-6))
        worker.start()
        worker.join()
    assert litert.interpreter_count == before
