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


class RandomBend(keras.layers.Layer):
    """Rotation, zoom, slant, shift and a smooth bend of each image, resampled once.

    Writers differ less in position or size (the preprocessing removes those)
    than in shape: a slant, a loop rounder, a stem bowed, a bar tilted. The
    bend is random displacements on a coarse `grid` x `grid` lattice (`warp`
    pixels, standard deviation), upsampled smoothly to the whole image, so
    whole strokes move coherently (per-pixel noise, Keras'
    RandomElasticTransform at these sizes, frays them instead). Keras'
    rotation, zoom and translation layers each resample the image, and three
    bilinear resamplings in a row blur a 28x28 digit visibly, while the server
    shows the model crisp ones; here every change is one sampling grid and one
    bilinear read. Outside the image is background.
    """

    def __init__(self, rotation: float = 0.25, zoom: float = 0.12, translation: float = 0.07,
                 shear: float = 0.0, warp: float = 0.0, grid: int = 4, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rotation, self.zoom, self.translation = rotation, zoom, translation  # radians, fractions
        self.shear, self.warp, self.grid = shear, warp, grid  # x shift per row, pixels
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        batch = tf.shape(images)[0]
        height, width = images.shape[1], images.shape[2]

        def uniform(limit):
            return keras.random.uniform((batch, 1, 1), -limit, limit, seed=self.seed_generator)

        angle, scale, slant = uniform(self.rotation), 1.0 + uniform(self.zoom), uniform(self.shear)
        shift_y, shift_x = uniform(self.translation) * height, uniform(self.translation) * width
        centre_y, centre_x = (height - 1) / 2.0, (width - 1) / 2.0
        rows, cols = tf.meshgrid(tf.range(height, dtype=tf.float32) - centre_y,
                                 tf.range(width, dtype=tf.float32) - centre_x, indexing="ij")
        slanted = cols[None] + slant * rows[None]
        cos, sin = tf.cos(angle), tf.sin(angle)
        source_x = (cos * slanted - sin * rows[None]) / scale + centre_x + shift_x
        source_y = (sin * slanted + cos * rows[None]) / scale + centre_y + shift_y
        if self.warp > 0:
            coarse = keras.random.normal((batch, self.grid, self.grid, 2), stddev=self.warp,
                                         seed=self.seed_generator)
            field = tf.image.resize(coarse, (height, width), method="bicubic")
            source_y, source_x = source_y + field[..., 0], source_x + field[..., 1]
        return _sample_bilinear(images, source_y, source_x)


def _sample_bilinear(images, rows, cols):
    """images (B, H, W, 1) read at fractional (B, H, W) positions; 0 outside."""
    height, width = images.shape[1], images.shape[2]
    padded = tf.pad(images[..., 0], [[0, 0], [1, 1], [1, 1]])  # a ring of background
    rows = tf.clip_by_value(rows + 1.0, 0.0, height + 1.0)
    cols = tf.clip_by_value(cols + 1.0, 0.0, width + 1.0)
    top, left = tf.floor(rows), tf.floor(cols)
    dy, dx = rows - top, cols - left
    top = tf.cast(top, tf.int32)
    left = tf.cast(left, tf.int32)
    bottom = tf.minimum(top + 1, height + 1)
    right = tf.minimum(left + 1, width + 1)

    def at(r, c):
        return tf.gather_nd(padded, tf.stack([r, c], axis=-1), batch_dims=1)

    value = ((1 - dy) * (1 - dx) * at(top, left) + (1 - dy) * dx * at(top, right)
             + dy * (1 - dx) * at(bottom, left) + dy * dx * at(bottom, right))
    return value[..., None]


def build_augmenter(seed: int = 0, warp: float = 0.0, shear: float = 0.0) -> keras.Sequential:
    """Stroke-thickness, rotation (about +-14 degrees), zoom (+-12%) and shift
    (+-7%) jitter for 28x28 digits, with an optional bend and slant (RandomBend).

    Kept mild: the preprocessing already normalises size and position, so the
    model only has to absorb what is left over, plus the slant and pen width
    that no normalisation removes. Models up to v3 were trained with Keras'
    RandomRotation, RandomZoom and RandomTranslation in a row (three
    resamplings; see RandomBend for why that changed).
    """
    return keras.Sequential([StrokeThickness(0.7, seed=seed),
                             RandomBend(shear=shear, warp=warp, seed=seed + 4)], name="augmenter")


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
