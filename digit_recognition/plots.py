"""The figures the notebooks show, one function each, each returning a Figure.

The notebooks stay thin (they define no functions), so every picture lives
here where it is written once and tested by running the notebooks.
Matplotlib is a notebook and development dependency, not a run-time one:
it is imported when a figure is drawn, so importing this module (or `utils`)
never needs it.
"""
from __future__ import annotations

import numpy as np

DIGITS = range(10)


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def _grid_axes(count: int, columns: int, cell: float = 1.0, title: str | None = None):
    plt = _pyplot()
    columns = max(1, min(columns, count))
    rows = max(1, int(np.ceil(count / columns)))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * cell, rows * cell * 1.15),
                                squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    if title:
        figure.suptitle(title)
    return figure, axes.flat


def _history_dict(history) -> dict:
    return history.history if hasattr(history, "history") else dict(history)


def plot_training_curves(history, title: str = "Training"):
    """Loss and accuracy per epoch, training beside validation."""
    plt = _pyplot()
    curves = _history_dict(history)
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 3.5))
    epochs = np.arange(1, len(curves.get("loss", [])) + 1)
    for axis, metric in ((loss_axis, "loss"), (accuracy_axis, "accuracy")):
        for prefix, style in (("", "-o"), ("val_", "--s")):
            values = curves.get(prefix + metric)
            if values:
                axis.plot(epochs, values, style, label=("validation " if prefix else "training ") + metric)
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_confusion_matrix(y_true, y_pred, title: str = "Confusion matrix"):
    """Counts of (true, predicted); the diagonal dimmed so the mistakes stand out."""
    from .evaluation import confusion_matrix

    plt = _pyplot()
    counts = confusion_matrix(y_true, y_pred)
    classes = range(counts.shape[0])  # ten digits, and "not a digit" for an eleven-class model
    off_diagonal = counts * (1 - np.eye(len(classes), dtype=np.int64))
    figure, axis = plt.subplots(figsize=(6.5, 5.5))
    image = axis.imshow(off_diagonal, cmap="Reds")
    for true in classes:
        for predicted in classes:
            value = counts[true, predicted]
            if value:
                axis.text(predicted, true, str(value), ha="center", va="center", fontsize=8,
                          color="grey" if true == predicted else "black")
    names = [str(c) if c < 10 else "not a\ndigit" for c in classes]
    axis.set_xticks(list(classes), names)
    axis.set_yticks(list(classes), names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    correct = int(np.trace(counts))
    total = max(int(counts.sum()), 1)
    axis.set_title(f"{title}: {correct}/{total} right ({correct / total:.2%})")
    figure.colorbar(image, ax=axis, label="mistakes")
    figure.tight_layout()
    return figure


def plot_digit_grid(images, labels=None, title: str | None = None, columns: int = 10, limit: int = 50):
    """28x28 digits (ink = 1) as white on black, MNIST's look, labelled."""
    count = min(len(images), limit)
    figure, axes = _grid_axes(count, columns, title=title)
    for index, axis in zip(range(count), axes, strict=False):
        axis.imshow(np.asarray(images[index]).reshape(28, 28), cmap="gray", vmin=0, vmax=1)
        if labels is not None:
            axis.set_title(str(labels[index]), fontsize=9)
    return figure


def plot_mistakes(images, y_true, y_pred, probabilities=None, title: str = "Mistakes",
                  columns: int = 10, limit: int = 40):
    """The digits the model got wrong, titled 'true->predicted (confidence)'."""
    wrong = np.flatnonzero(np.asarray(y_true) != np.asarray(y_pred))
    if probabilities is not None:  # most confident mistakes first: the most telling ones
        wrong = wrong[np.argsort(-np.asarray(probabilities)[wrong].max(axis=1), kind="stable")]
    wrong = wrong[:limit]
    figure, axes = _grid_axes(max(len(wrong), 1), columns,
                              title=f"{title}: {len(np.flatnonzero(np.asarray(y_true) != np.asarray(y_pred)))}"
                                    f" of {len(y_true)}")
    for index, axis in zip(wrong, axes, strict=False):
        axis.imshow(np.asarray(images[index]).reshape(28, 28), cmap="gray", vmin=0, vmax=1)
        caption = f"{y_true[index]}\u2192{y_pred[index]}"
        if probabilities is not None:
            caption += f" {np.asarray(probabilities)[index].max():.0%}"
        axis.set_title(caption, fontsize=8, color="crimson")
    return figure


def plot_class_balance(label_sets: dict, title: str = "Samples per digit"):
    """Bars per digit for each named label array, e.g. {"train": y_train, "test": y_test}."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(8, 3.5))
    width = 0.8 / max(len(label_sets), 1)
    for offset, (name, labels) in enumerate(label_sets.items()):
        counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=10)
        axis.bar(np.arange(10) + (offset - (len(label_sets) - 1) / 2) * width, counts, width,
                 label=f"{name} ({counts.sum()})")
    axis.set_xticks(list(DIGITS))
    axis.set_xlabel("digit")
    axis.set_ylabel("samples")
    axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    return figure


def plot_counts_per_digit(counts: dict, title: str = "Prepared drawings per digit"):
    """A prepare report's {digit: {"train": n, "validation": n}} as stacked bars."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(8, 3.5))
    digits = sorted(counts)
    train = np.array([counts[d]["train"] for d in digits])
    validation = np.array([counts[d]["validation"] for d in digits])
    axis.bar(digits, train, label=f"train ({train.sum()})")
    axis.bar(digits, validation, bottom=train, label=f"validation ({validation.sum()})")
    axis.set_xticks(digits)
    axis.set_xlabel("digit")
    axis.set_ylabel("drawings")
    axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    return figure


def plot_class_means(images, labels, title: str = "Mean image per digit"):
    """The average of every digit's images: where ink usually is, and how spread."""
    images = np.asarray(images).reshape(-1, 28, 28)
    labels = np.asarray(labels)
    figure, axes = _grid_axes(10, 10, cell=1.2, title=title)
    for digit, axis in zip(DIGITS, axes, strict=False):
        members = images[labels == digit]
        if len(members):
            axis.imshow(members.mean(axis=0), cmap="magma", vmin=0, vmax=1)
        axis.set_title(f"{digit} (n={len(members)})", fontsize=8)
    return figure


def _on_checkerboard(rgba: np.ndarray) -> np.ndarray:
    """Composite an RGBA drawing over a grey checkerboard, so transparency shows."""
    rgba = np.asarray(rgba, dtype=np.float32)
    if rgba.max(initial=0) > 1.0:
        rgba = rgba / 255.0
    height, width = rgba.shape[:2]
    square = max(4, min(height, width) // 16)
    rows, cols = np.indices((height, width)) // square
    checker = np.where((rows + cols) % 2 == 0, 0.55, 0.7)[..., None]
    alpha = rgba[..., 3:4]
    return rgba[..., :3] * alpha + checker * (1 - alpha)


def plot_drawings_beside_mnist(drawings, model_inputs, labels, mnist_images=None, mnist_labels=None,
                               title: str = "Canvas drawings: raw, preprocessed, and an MNIST digit"):
    """One row per drawing: the canvas as drawn (transparency on a checkerboard),
    the 28x28 the model sees, and an MNIST digit of the same class for comparison."""
    plt = _pyplot()
    count = len(drawings)
    columns = 3 if mnist_images is not None else 2
    figure, axes = plt.subplots(count, columns, figsize=(columns * 1.8, count * 1.8), squeeze=False)
    for row in range(count):
        raw = np.asarray(drawings[row])
        axes[row, 0].imshow(_on_checkerboard(raw))
        axes[row, 0].set_title(f"drawn {labels[row]} ({raw.shape[1]}x{raw.shape[0]})", fontsize=8)
        axes[row, 1].imshow(np.asarray(model_inputs[row]).reshape(28, 28), cmap="gray", vmin=0, vmax=1)
        axes[row, 1].set_title("model input", fontsize=8)
        if mnist_images is not None:
            same_class = np.flatnonzero(np.asarray(mnist_labels) == labels[row])
            if len(same_class):
                axes[row, 2].imshow(np.asarray(mnist_images[same_class[row % len(same_class)]]),
                                    cmap="gray", vmin=0, vmax=1)
            axes[row, 2].set_title("MNIST", fontsize=8)
        for axis in axes[row]:
            axis.set_xticks([])
            axis.set_yticks([])
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_before_after(before: dict, after: dict, title: str = "Fine-tuning: accuracy before and after"):
    """Grouped bars of {"metric": accuracy} before and after, values printed on them."""
    plt = _pyplot()
    names = [name for name in before if name in after]
    figure, axis = plt.subplots(figsize=(7, 3.5))
    positions = np.arange(len(names))
    for offset, (label, values) in zip((-0.2, 0.2), (("before", before), ("after", after)), strict=True):
        heights = [0.0 if np.isnan(values[n]) else values[n] for n in names]
        bars = axis.bar(positions + offset, heights, 0.4, label=label)
        axis.bar_label(bars, labels=["n/a" if np.isnan(values[n]) else f"{values[n]:.2%}" for n in names],
                       fontsize=8)
    axis.set_xticks(positions, [n.replace("_", " ") for n in names])
    low = min([v for d in (before, after) for v in d.values() if not np.isnan(v)], default=0.0)
    axis.set_ylim(max(0.0, low - 0.05), 1.0)
    axis.set_ylabel("accuracy")
    axis.set_title(title)
    axis.legend(loc="lower right")
    figure.tight_layout()
    return figure


def plot_reliability_diagram(holdout: dict, title: str = "Reliability on held-out writers"):
    """Accuracy against stated confidence per bin, before and after calibration.

    `holdout` is a model metadata's "holdout" section: its "reliability" and
    "reliability_uncalibrated" rows are (lower, upper, count, mean confidence,
    accuracy). A calibrated model's points lie on the diagonal.
    """
    plt = _pyplot()
    figure, (curve_axis, count_axis) = plt.subplots(1, 2, figsize=(10, 4))
    curve_axis.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
    for key, label, style in (("reliability_uncalibrated", "before calibration", "--s"),
                              ("reliability", "after calibration", "-o")):
        rows = [row for row in holdout.get(key) or [] if row[2]]
        if not rows:
            continue
        ece = holdout.get("digit_ece_uncalibrated" if key.endswith("uncalibrated") else "digit_ece")
        curve_axis.plot([row[3] for row in rows], [row[4] for row in rows], style,
                        label=f"{label} (ECE {ece:.2%})" if ece is not None else label)
        if key == "reliability":
            count_axis.bar([(row[0] + row[1]) / 2 for row in rows], [row[2] for row in rows],
                           width=[(row[1] - row[0]) * 0.9 for row in rows])
    curve_axis.set_xlabel("stated confidence (the named digit's probability)")
    curve_axis.set_ylabel("share read right")
    curve_axis.set_xlim(0, 1)
    curve_axis.set_ylim(0, 1.02)
    curve_axis.grid(alpha=0.3)
    curve_axis.legend(loc="upper left")
    count_axis.set_yscale("log")
    count_axis.set_xlabel("stated confidence")
    count_axis.set_title("drawings per bin (after calibration)")
    figure.suptitle(title)
    figure.tight_layout()
    return figure
