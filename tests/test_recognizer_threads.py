"""The recognizer under gunicorn threads: one instance, many threads at once.

Every worker shares one Recognizer (one traced tf.function) across its
threads with no lock. If any state leaked between concurrent calls, some
thread would get another drawing's answer; so 16 threads each classify the
same varied drawings, in different orders, all at once, and every answer must
equal the one the drawing gets on its own.
"""
from __future__ import annotations

import threading

import numpy as np

from digit_recognition.datasets import load_mnist
from testing_support.drawings import mnist_as_canvas

THREADS = 16
ROUNDS = 2
PER_DIGIT = 3  # 30 drawings, every digit, several canvas sizes and styles


def _drawings(mnist_path) -> list[bytes]:
    (_, _), (x_test, y_test) = load_mnist(mnist_path)
    drawings = []
    for digit in range(10):
        for k, index in enumerate(np.flatnonzero(y_test == digit)[:PER_DIGIT]):
            image = x_test[index]  # float32 in [0, 1], ink = 1
            drawings.append(mnist_as_canvas(image, canvas_px=(140, 280, 420)[k],
                                            style=("black_on_white", "white_on_transparent")[k % 2]))
    return drawings


def test_concurrent_predictions_equal_single_threaded_ones(app, mnist_path):
    recognizer = app.extensions["recognizer"]
    drawings = _drawings(mnist_path)
    alone = [recognizer.read_png(png).parts[0] for png in drawings]
    assert len({p.digit for p in alone}) >= 5, "the drawings should not all look alike"

    results: dict[tuple[int, int, int], object] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def hammer(worker: int) -> None:
        try:
            start.wait()
            for round_ in range(ROUNDS):
                # A different order per thread and round, so different drawings overlap.
                order = np.random.default_rng(worker * 100 + round_).permutation(len(drawings))
                for i in order:
                    results[(worker, round_, int(i))] = recognizer.read_png(drawings[i]).parts[0]
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(w,)) for w in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors[:3]
    assert len(results) == THREADS * ROUNDS * len(drawings)

    for (worker, round_, i), prediction in results.items():
        expected = alone[i]
        assert prediction.digit == expected.digit, (worker, round_, i)
        np.testing.assert_array_equal(prediction.digit_image, expected.digit_image)
        np.testing.assert_allclose(prediction.probabilities, expected.probabilities, rtol=0, atol=1e-6)
