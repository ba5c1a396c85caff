"""The CNN, its training-time augmentation, and fast inference.

The network is a small VGG-style CNN: about 99.5% on MNIST and quick enough to
train on two CPU cores in minutes. Augmentation lives outside the saved model
(it runs in the input pipeline), so the served model is a pure function of the
28x28 image.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's C++ banners out of logs

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from .preprocessing import MNIST_SIZE  # noqa: E402

# Ten digits and "not a digit" (digit_recognition.reading names the index).
NUM_CLASSES = 11
INPUT_SHAPE = (MNIST_SIZE, MNIST_SIZE, 1)


def _conv_bn_relu(x, filters: int, kernel: int):
    x = keras.layers.Conv2D(filters, kernel, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    return keras.layers.Activation("relu")(x)


def build_model(seed: int = 0, num_classes: int = NUM_CLASSES, name: str = "digit_cnn") -> keras.Model:
    """The digit CNN, uncompiled. Input (N, 28, 28, 1) in [0, 1]; output softmax.

    Sized for two CPU cores: one 5x5 layer at full resolution (a wide receptive
    field where it is cheap), the 3x3 pairs at 14x14 and 7x7, batch norm for
    fast convergence. About 16M multiply-adds per digit.
    """
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=INPUT_SHAPE, name="digit")
    x = _conv_bn_relu(inputs, 32, 5)
    x = keras.layers.MaxPooling2D(2)(x)  # 14x14
    x = _conv_bn_relu(x, 64, 3)
    x = _conv_bn_relu(x, 64, 3)
    x = keras.layers.MaxPooling2D(2)(x)  # 7x7
    x = keras.layers.Dropout(0.25)(x)
    x = _conv_bn_relu(x, 128, 3)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.4)(x)
    x = keras.layers.Dense(128, activation="relu")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


def average_of(members: list[keras.Model]) -> keras.Model:
    """One model whose output is the mean of the members' probabilities.

    Members trained apart (other seeds, other data order) make different
    mistakes, so their average is right more often than either. Built as one
    graph so the server, the LiteRT conversion and fine-tuning treat it as any
    other model file. Each member is rebuilt under its own name (Keras wants
    unique layer names, and every saved member is called "digit_cnn") with its
    weights copied: members must have build_model's architecture.
    """
    if len(members) < 2:
        raise ValueError("an average needs at least two members")
    inputs = keras.Input(shape=INPUT_SHAPE, name="digit")
    outputs = []
    for i, trained in enumerate(members):
        member = build_model(i, int(trained.outputs[0].shape[-1]), name=f"member_{i}")
        member.set_weights(trained.get_weights())
        outputs.append(member(inputs))
    averaged = keras.layers.Average(name="probabilities")(outputs)
    return keras.Model(inputs, averaged, name="digit_cnn_average")


def with_not_digit_output(trained: keras.Model, seed: int = 0) -> keras.Model:
    """A model with every layer of `trained`, whose output gains the not-a-digit class.

    Used to teach a ten-digit model the eleventh class without relearning the
    digits from scratch: the ten digit units keep their weights, the new unit
    starts at zero weights and a negative bias (rarely chosen until trained).
    """
    model = build_model(seed, NUM_CLASSES)
    old_out = trained.get_layer("probabilities")
    if old_out.units == NUM_CLASSES:
        model.set_weights(trained.get_weights())
        return model
    for old_layer, new_layer in zip(trained.layers, model.layers, strict=True):
        if old_layer.name != "probabilities" and old_layer.get_weights():
            new_layer.set_weights(old_layer.get_weights())
    kernel, bias = old_out.get_weights()
    new_kernel = np.zeros((kernel.shape[0], NUM_CLASSES), kernel.dtype)
    new_kernel[:, :kernel.shape[1]] = kernel
    new_bias = np.full(NUM_CLASSES, -2.0, bias.dtype)
    new_bias[:bias.shape[0]] = bias
    model.get_layer("probabilities").set_weights([new_kernel, new_bias])
    return model


def compile_model(model: keras.Model, learning_rate) -> keras.Model:
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=["accuracy"])
    return model


class StrokeThickness(keras.layers.Layer):
    """Randomly thicken or thin strokes, as different pens and brushes do.

    Grey-level dilation (a 3x3 max) or erosion (a 3x3 min), blended in by a
    random amount per image, so widths vary continuously.
    """

    def __init__(self, strength: float = 1.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.strength = strength
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        batch = tf.shape(images)[0]
        amount = keras.random.uniform((batch, 1, 1, 1), -self.strength, self.strength,
                                      seed=self.seed_generator)
        dilated = tf.nn.max_pool2d(images, 3, 1, "SAME")
        eroded = -tf.nn.max_pool2d(-images, 3, 1, "SAME")
        target = tf.where(amount > 0, dilated, eroded)
        images = images + tf.abs(amount) * (target - images)
        # Erosion dims thin strokes; the preprocessing always restores full
        # ink, so do the same here rather than teach the model faint digits.
        peak = tf.reduce_max(images, axis=[1, 2, 3], keepdims=True)
        return images / tf.maximum(peak, 1e-3)


def build_augmenter(seed: int = 0) -> keras.Sequential:
    """Position, scale, rotation and stroke-thickness jitter for 28x28 digits.

    Kept mild: the preprocessing already normalises size and position, so the
    model only has to absorb what is left over, plus the slant and pen width
    that no normalisation removes.
    """
    return keras.Sequential([
        StrokeThickness(0.7, seed=seed),
        keras.layers.RandomRotation(0.04, fill_mode="constant", seed=seed + 1),  # ~ +-14 degrees
        keras.layers.RandomZoom((-0.12, 0.12), fill_mode="constant", seed=seed + 2),
        keras.layers.RandomTranslation(0.07, 0.07, fill_mode="constant", seed=seed + 3),
    ], name="augmenter")


class DigitClassifier:
    """A loaded model with a compiled, graph-mode inference function.

    `model.predict()` builds a data pipeline per call (tens of ms); a traced
    tf.function with a fixed signature runs the same graph in about a
    millisecond. TensorFlow's executor is thread-safe, and this object holds no
    per-request state, so one instance serves every thread of a worker.
    """

    def __init__(self, model: keras.Model):
        self.model = model
        # The concrete function of a fixed signature: calling it skips
        # tf.function's per-call argument matching (~0.4 ms of a ~1 ms call).
        self._infer = tf.function(
            lambda images: model(images, training=False),
            input_signature=[tf.TensorSpec((None,) + INPUT_SHAPE, tf.float32)],
        ).get_concrete_function()
        self.predict_probabilities(np.zeros((1, MNIST_SIZE, MNIST_SIZE), np.float32))  # warm up
        self.num_classes = int(model.outputs[0].shape[-1])

    @classmethod
    def load(cls, path: str | os.PathLike) -> "DigitClassifier":
        return cls(keras.models.load_model(path, compile=False))

    def predict_probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) or (N, 28, 28, 1) floats in [0, 1] -> (N, classes) probabilities."""
        batch = np.asarray(images, dtype=np.float32).reshape((-1,) + INPUT_SHAPE)
        return self._infer(tf.constant(batch)).numpy()
