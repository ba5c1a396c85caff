"""The files a saved model is made of, and its metadata, without TensorFlow.

A model lives as up to three files side by side, named after the same stem:

    digit_cnn.keras    the Keras model: what training and fine-tuning load
    digit_cnn.tflite   the same weights for LiteRT: what the server runs
    digit_cnn.json     metadata: version, accuracy, data, and which files belong to it

The server imports only this module (never digit_recognition.training), so a
serving image needs no TensorFlow to find and describe its model.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

KERAS_SUFFIX = ".keras"
TFLITE_SUFFIX = ".tflite"


def metadata_path_for(model_path: str | os.PathLike) -> Path:
    """The metadata file that sits beside a model file: x.keras (or x.tflite) -> x.json."""
    return Path(model_path).with_suffix(".json")


def keras_path_for(model_path: str | os.PathLike) -> Path:
    return Path(model_path).with_suffix(KERAS_SUFFIX)


def tflite_path_for(model_path: str | os.PathLike) -> Path:
    return Path(model_path).with_suffix(TFLITE_SUFFIX)


def read_metadata(model_path: str | os.PathLike) -> dict:
    """The metadata of the model at `model_path`; {} when it has none."""
    path = metadata_path_for(model_path)
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def sha256_of_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_entry(keras_path: Path, tflite_bytes: bytes | None) -> dict:
    """The metadata's "files" entry: the names of the model's files (relative to
    the metadata file), and the sha256 of the .tflite, so a server can tell a
    .tflite left over from an earlier model from the one converted from this one."""
    entry = {"keras": keras_path.name}
    if tflite_bytes is not None:
        entry["tflite"] = tflite_path_for(keras_path).name
        entry["tflite_sha256"] = sha256_of_bytes(tflite_bytes)
    return entry


def tflite_matches_metadata(metadata: dict, tflite_bytes: bytes) -> bool:
    """Whether a .tflite is the one its metadata names. False when the metadata
    names none: a .keras and .json replaced by a new model's, beside the old
    model's .tflite, look exactly like that (convert to fix it)."""
    expected = (metadata.get("files") or {}).get("tflite_sha256")
    return expected is not None and expected == sha256_of_bytes(tflite_bytes)
