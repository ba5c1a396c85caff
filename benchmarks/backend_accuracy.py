"""The same model through LiteRT and through Keras: same accuracy, same answers?

On the MNIST test set and on the pen writers the model never trained on
(rendered as canvas drawings in the four styles, through the server's
preprocessing), prints each backend's accuracy, how many answers differ and
the largest difference in any probability. Keras is the baseline, in the
same run.
(benchmarks/pen_accuracy.py --backend litert|keras does the pen part through
the real server over HTTP.)

    python benchmarks/backend_accuracy.py [--model-path M] [--mnist-path P] [--pen-digits-path P]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from digit_recognition.datasets import load_mnist, load_pen_digits  # noqa: E402
from digit_recognition.evaluation import predict_probabilities  # noqa: E402
from digit_recognition.inference import KerasClassifier, LiteRTClassifier  # noqa: E402
from digit_recognition.model_files import read_metadata, tflite_path_for  # noqa: E402
from digit_recognition.preprocessing import preprocess_image  # noqa: E402
from digit_recognition.strokes import STYLES, random_canvas_params, render_strokes  # noqa: E402
from digit_recognition.training import DEFAULT_HOLDOUT_GROUPS  # noqa: E402
from flask_app.config import DEFAULT_MODEL_PATH  # noqa: E402

SHARED = REPO_ROOT.parent / "shared" / "data"


def pen_holdout(path: str, groups, seed: int = 12345):
    """Held-out pen digits drawn in every style, as the server would read them."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for digit in load_pen_digits(path):
        if digit.writer_group in groups:
            for style in STYLES:
                images.append(preprocess_image(render_strokes(digit.strokes, random_canvas_params(rng, style=style))))
                labels.append(digit.label)
    return np.stack(images), np.asarray(labels)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", default=os.environ.get("MODEL_PATH", str(DEFAULT_MODEL_PATH)))
    parser.add_argument("--mnist-path", default=os.environ.get("MNIST_PATH", str(SHARED / "mnist.npz")))
    parser.add_argument("--pen-digits-path", default=os.environ.get(
        "PEN_DIGITS_PATH", str(SHARED / "pen_digits_dev.jsonl.gz")))
    args = parser.parse_args()

    metadata = read_metadata(args.model_path)
    groups = next((tuple(s["holdout_groups"]) for s in metadata.get("data", [])
                   if s.get("name") == "pen_digits"), DEFAULT_HOLDOUT_GROUPS)
    backends = {"LiteRT": LiteRTClassifier.load(tflite_path_for(args.model_path)),
                "Keras (baseline)": KerasClassifier(args.model_path)}
    _, (x_mnist, y_mnist) = load_mnist(args.mnist_path)
    x_pen, y_pen = pen_holdout(args.pen_digits_path, groups)
    print(f"model {metadata.get('model_version', args.model_path)}; pen writer groups {', '.join(groups)}")
    for name, x, y in (("MNIST test", x_mnist, y_mnist),
                       (f"held-out pen drawings, {len(STYLES)} styles", x_pen, y_pen)):
        probabilities = {}
        print(f"\n{name} ({len(y)} digits)")
        for backend, classifier in backends.items():
            probabilities[backend] = predict_probabilities(classifier, x)
            accuracy = float((probabilities[backend].argmax(axis=1) == y).mean())
            print(f"  {backend:<18} accuracy {accuracy:.2%}")
        litert, keras_p = probabilities["LiteRT"], probabilities["Keras (baseline)"]
        print(f"  answers that differ: {int((litert.argmax(1) != keras_p.argmax(1)).sum())}; "
              f"largest probability difference {float(np.abs(litert - keras_p).max()):.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
