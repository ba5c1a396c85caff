"""Training-time augmentation: what RandomBend does to a 28x28 digit."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw

from digit_recognition.model import RandomBend, _sample_bilinear, build_augmenter


def stroke_images(count: int, seed: int = 0) -> np.ndarray:
    """(count, 28, 28, 1) digit-like drawings: a few lines 2 px wide, ink 1, inside the frame."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        image = Image.new("L", (28, 28), 0)
        draw = ImageDraw.Draw(image)
        points = [tuple(int(v) for v in rng.integers(6, 22, 2)) for _ in range(4)]
        draw.line(points, fill=255, width=2)
        images.append(np.asarray(image, dtype=np.float32) / 255.0)
    return np.stack(images)[..., None]


def test_a_bend_of_nothing_gives_the_image_back_exactly():
    images = stroke_images(8)
    still = RandomBend(rotation=0.0, zoom=0.0, translation=0.0, shear=0.0, warp=0.0, seed=1)
    np.testing.assert_array_equal(still(tf.constant(images), training=True).numpy(), images)


def test_outside_training_the_bend_does_nothing():
    images = stroke_images(4)
    bend = RandomBend(shear=0.3, warp=2.0, seed=1)
    np.testing.assert_array_equal(bend(tf.constant(images), training=False).numpy(), images)


def test_bilinear_sampling_shifts_blends_and_reads_background_outside():
    image = np.zeros((1, 4, 4, 1), np.float32)
    image[0, 1, 1, 0] = 1.0
    rows, cols = np.meshgrid(np.arange(4, dtype=np.float32), np.arange(4, dtype=np.float32), indexing="ij")
    shifted = _sample_bilinear(tf.constant(image), tf.constant(rows[None]), tf.constant(cols[None] - 1.0)).numpy()
    assert shifted[0, 1, 2, 0] == 1.0 and shifted.sum() == 1.0  # read one column to the left: ink moves right
    half = _sample_bilinear(tf.constant(image), tf.constant(rows[None]), tf.constant(cols[None] + 0.5)).numpy()
    np.testing.assert_allclose(half[0, 1, :2, 0], [0.5, 0.5])
    outside = _sample_bilinear(tf.constant(image), tf.constant(rows[None] + 10.0), tf.constant(cols[None])).numpy()
    assert not outside.any()


def test_one_resampling_keeps_strokes_crisper_than_three():
    """Why RandomBend exists: Keras' rotation, zoom and translation layers each
    resample, and the server shows the model crisp digits."""
    images = tf.constant(stroke_images(64, seed=3))

    def saturated_share(augmented) -> float:  # of the ink, how much is near full strength
        augmented = augmented.numpy()
        return float((augmented >= 0.9).sum() / max((augmented >= 0.1).sum(), 1))

    single = build_augmenter(seed=0)
    chained = keras.Sequential([  # the augmenter up to v3, its ranges the same
        single.layers[0],
        keras.layers.RandomRotation(0.04, fill_mode="constant", seed=1),
        keras.layers.RandomZoom((-0.12, 0.12), fill_mode="constant", seed=2),
        keras.layers.RandomTranslation(0.07, 0.07, fill_mode="constant", seed=3),
    ])
    original = saturated_share(images)
    assert saturated_share(single(images, training=True)) > 1.5 * saturated_share(chained(images, training=True))
    assert saturated_share(single(images, training=True)) <= original


def test_a_bend_keeps_the_digit_in_frame_and_its_ink_in_range():
    images = stroke_images(32, seed=5)
    bent = RandomBend(shear=0.2, warp=1.0, seed=2)(tf.constant(images), training=True).numpy()
    assert bent.shape == images.shape
    assert bent.min() >= 0.0 and bent.max() <= 1.0 + 1e-6
    ink_ratio = bent.sum(axis=(1, 2, 3)) / images.sum(axis=(1, 2, 3))
    assert 0.6 < float(np.median(ink_ratio)) < 1.5  # moved and reshaped, not erased or smeared
    assert not np.allclose(bent, images)
