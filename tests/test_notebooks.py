"""The three notebooks: committed clean and thin, and they run top to bottom.

Each notebook is executed headless with papermill, in a real Jupyter kernel
running this interpreter, with tiny parameters and on temporary data: a label
store filled with pen digits rendered as canvas drawings (saved through the
real LabelStore), MNIST from the shared path, every output under tmp_path.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import papermill
import pytest

from digit_recognition.datasets import load_pen_digits
from digit_recognition.finetuning import load_prepared_dataset, prepare_collected_dataset
from digit_recognition.label_store import LabelStore
from digit_recognition.strokes import CanvasParams, render_strokes, to_png_bytes

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ("model_training.ipynb", "exploration.ipynb", "custom_data_preparation.ipynb")
KERNEL_NAME = "digit-recognition-tests"
DRAWINGS_PER_DIGIT = 3
# Modules a notebook may import from besides `utils`: the standard library and numpy.
ALLOWED_IMPORTS = {"utils", "os", "pathlib", "numpy"}


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory):
    """A kernelspec that runs *this* interpreter, installed under tmp and found via JUPYTER_PATH.

    The venv's default "python3" spec runs whatever `python` is on PATH, which
    in CI need not be the venv's.
    """
    prefix = tmp_path_factory.mktemp("jupyter")
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", str(prefix),
                    "--name", KERNEL_NAME], check=True, capture_output=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
        yield KERNEL_NAME


@pytest.fixture(scope="module")
def labels_dir(tmp_path_factory, pen_digits_path):
    """A label store with a few canvas drawings of every digit, one black-on-white style."""
    root = tmp_path_factory.mktemp("labels")
    store = LabelStore(root)
    rng = np.random.default_rng(7)
    digits = load_pen_digits(pen_digits_path)
    for label in range(10):
        of_label = [d for d in digits if d.label == label]
        for index in rng.choice(len(of_label), DRAWINGS_PER_DIGIT, replace=False):
            params = CanvasParams(280, float(rng.uniform(0.5, 0.8)), 0.0, 0.0, 0.06, "black_on_white")
            store.save(to_png_bytes(render_strokes(of_label[index].strokes, params)), label)
    return root


def run_notebook(name: str, output: Path, kernel: str, **parameters) -> nbformat.NotebookNode:
    papermill.execute_notebook(str(REPO_ROOT / name), str(output), parameters=parameters,
                               kernel_name=kernel, cwd=str(REPO_ROOT), progress_bar=False)
    return nbformat.read(output, as_version=4)


def text_output(notebook) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                parts.append(output["text"])
    return "".join(parts)


def image_count(notebook) -> int:
    return sum("image/png" in output.get("data", {})
               for cell in notebook.cells for output in cell.get("outputs", []))


# -- the committed files -----------------------------------------------------

@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_without_outputs(name):
    notebook = nbformat.read(REPO_ROOT / name, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: a code cell has outputs"
            assert cell.execution_count is None, f"{name}: a code cell has an execution count"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_starts_with_a_parameters_cell(name):
    notebook = nbformat.read(REPO_ROOT / name, as_version=4)
    first_code = next(cell for cell in notebook.cells if cell.cell_type == "code")
    assert "parameters" in first_code.metadata.get("tags", [])
    # Papermill overrides plain assignments; anything else there would not be a parameter.
    for statement in ast.parse(first_code.source).body:
        assert isinstance(statement, ast.Assign), f"{name}: the parameters cell does more than assign"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_thin(name):
    """No functions or classes of its own; everything comes from utils."""
    notebook = nbformat.read(REPO_ROOT / name, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)), \
                f"{name} defines a function or class: it belongs in utils/digit_recognition"
            if isinstance(node, ast.Import):
                modules = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                modules = {node.module.split(".")[0]}
            else:
                continue
            assert modules <= ALLOWED_IMPORTS, f"{name} imports {modules - ALLOWED_IMPORTS}"


def test_training_notebook_trains_first_then_has_a_finetuning_section():
    notebook = nbformat.read(REPO_ROOT / "model_training.ipynb", as_version=4)
    headings = [line for cell in notebook.cells if cell.cell_type == "markdown"
                for line in cell.source.splitlines() if line.startswith("## ")]
    assert "## Finetuning" in headings
    assert headings.index("## Training") < headings.index("## Finetuning")


# -- running them ------------------------------------------------------------

def test_custom_data_preparation_notebook_writes_the_dataset(tmp_path, kernel_name, labels_dir):
    dataset_path = tmp_path / "collected.npz"
    notebook = run_notebook("custom_data_preparation.ipynb", tmp_path / "out.ipynb", kernel_name,
                            labels_dir=str(labels_dir), dataset_path=str(dataset_path))
    dataset = load_prepared_dataset(dataset_path)
    total = len(dataset.y_train) + len(dataset.y_validation)
    assert total == 10 * DRAWINGS_PER_DIGIT
    assert np.bincount(np.concatenate([dataset.y_train, dataset.y_validation]), minlength=10).tolist() \
        == [DRAWINGS_PER_DIGIT] * 10
    assert f"{10 * DRAWINGS_PER_DIGIT} samples read from the label store" in text_output(notebook)
    assert image_count(notebook) >= 2  # counts per digit, and the grid of drawings


def test_exploration_notebook_shows_collected_drawings(tmp_path, kernel_name, labels_dir, mnist_path):
    notebook = run_notebook("exploration.ipynb", tmp_path / "out.ipynb", kernel_name,
                            mnist_path=mnist_path, labels_dir=str(labels_dir), drawings_to_show=4)
    assert f"{10 * DRAWINGS_PER_DIGIT} collected drawings" in text_output(notebook)
    # class balance, sample grid, per-class means, drawings beside MNIST
    assert image_count(notebook) == 4


def test_exploration_notebook_falls_back_to_pen_digits(tmp_path, kernel_name, mnist_path, pen_digits_path):
    empty_store = tmp_path / "no-labels-yet"
    empty_store.mkdir()
    notebook = run_notebook("exploration.ipynb", tmp_path / "out.ipynb", kernel_name,
                            mnist_path=mnist_path, pen_digits_path=pen_digits_path,
                            labels_dir=str(empty_store), drawings_to_show=3)
    assert "showing pen digits rendered as canvas drawings" in text_output(notebook)
    assert image_count(notebook) == 4


def test_model_training_notebook_trains_and_finetunes(tmp_path, kernel_name, labels_dir, mnist_path,
                                                     monkeypatch):
    # The kernel inherits the environment: without the pen sets it must train on MNIST alone.
    monkeypatch.delenv("PEN_DIGITS_PATH", raising=False)
    monkeypatch.delenv("PEN_CHARS_PATH", raising=False)
    dataset_path = tmp_path / "collected.npz"
    prepare_collected_dataset(labels_dir, dataset_path, log=lambda *_: None)
    model_path, finetuned_path = tmp_path / "best_model.keras", tmp_path / "best_model_fine_tuning.keras"
    notebook = run_notebook(
        "model_training.ipynb", tmp_path / "out.ipynb", kernel_name,
        mnist_path=mnist_path, epochs=1, mnist_train_limit=300, model_output_path=str(model_path),
        collected_dataset_path=str(dataset_path), finetuned_output_path=str(finetuned_path),
        finetune_epochs=1, finetune_mnist_samples=200, finetune_check_acceptance=False,
        mnist_test_limit=500, synthetic_non_digits=100,
    )
    assert "no pen digits file given: training on MNIST alone" in text_output(notebook)
    metadata = json.loads(model_path.with_suffix(".json").read_text())
    assert metadata["training"]["train_samples"] > 0 and 0.0 <= metadata["mnist_test_accuracy"] <= 1.0
    finetuned = json.loads(finetuned_path.with_suffix(".json").read_text())
    assert finetuned["base_model"]["model_version"] == metadata["model_version"]
    assert metadata["training"]["mnist_test_limit"] == 500
    assert finetuned["data"][0]["sha256"] and finetuned["evaluation"]["mnist_test_samples"] == 500
    # curves, confusion matrix, mistakes; then before/after and fine-tuning curves
    assert image_count(notebook) == 5


def test_model_training_notebook_skips_finetuning_without_a_dataset(tmp_path, kernel_name, mnist_path,
                                                                    pen_digits_path, pen_chars_path):
    # With a little pen data: the not-a-digit class, calibration and the reliability diagram run too.
    notebook = run_notebook(
        "model_training.ipynb", tmp_path / "out.ipynb", kernel_name,
        mnist_path=mnist_path, epochs=1, mnist_train_limit=100, mnist_test_limit=100,
        pen_digits_path=pen_digits_path, pen_digit_limit=300, pen_chars_path=pen_chars_path,
        pen_char_limit=300, synthetic_non_digits=100, renders_per_pen_digit=1,
        model_output_path=str(tmp_path / "best_model.keras"),
        collected_dataset_path=str(tmp_path / "missing.npz"),
        finetuned_output_path=str(tmp_path / "best_model_fine_tuning.keras"),
    )
    assert "skipping fine-tuning" in text_output(notebook)
    assert (tmp_path / "best_model.keras").exists()
    assert not (tmp_path / "best_model_fine_tuning.keras").exists()
    metadata = json.loads((tmp_path / "best_model.json").read_text())
    assert metadata["calibration"]["temperature"] > 0 and metadata["holdout"]["non_digits"] > 0
    # curves, confusion matrix, mistakes, reliability diagram
    assert image_count(notebook) == 4
