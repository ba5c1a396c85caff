"""`python -m digit_recognition`: each way it can end, with its exit status.

0 done, 1 crashed (traceback), 2 usage error or missing/unusable input (one
line, nothing written), 3 finetune's model not accepted (the accepted and
rejected runs, which train, are in test_finetuning.py). Each case runs the real
command in a subprocess, as a scheduled job would.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from digit_recognition.finetuning import load_prepared_dataset
from digit_recognition.label_store import LabelStore
from testing_support.drawings import digit_png

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_MODEL = REPO_ROOT / "flask_app" / "model" / "digit_cnn.keras"
PROG = "python -m digit_recognition"


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "digit_recognition", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(completed: subprocess.CompletedProcess, command: str, *fragments: str) -> None:
    assert completed.returncode == 2, completed.stderr[-2000:]
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{PROG} {command}: error: "), completed.stderr
    assert "Traceback" not in completed.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def small_store(tmp_path) -> Path:
    """A label store with two drawings of every digit."""
    store = LabelStore(tmp_path / "labels")
    for label in range(10):
        for seed in range(2):
            store.save(digit_png(label, seed=seed), label)
    return tmp_path / "labels"


def test_help_answers_at_once_without_importing_tensorflow():
    probe = ("import sys\n"
             "from digit_recognition.__main__ import main\n"
             "for argv in (['--help'], ['train', '--help'], ['average', '--help'], ['prepare', '--help'],\n"
             "             ['finetune', '--help']):\n"
             "    try:\n"
             "        main(argv)\n"
             "    except SystemExit as exit:\n"
             "        assert exit.code == 0, (argv, exit.code)\n"
             "print('HEAVY', sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n")
    completed = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True,
                               text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "exit status: 0 done, 1 crashed, 2 usage error" in completed.stdout
    assert "HEAVY []" in completed.stdout


def test_no_command_is_a_usage_error():
    completed = run_cli()
    assert completed.returncode == 2
    assert "the following arguments are required" in completed.stderr


def test_a_bad_option_value_is_a_usage_error(tmp_path):
    completed = run_cli("prepare", "--validation-fraction", "1.5", "--output", str(tmp_path / "out.npz"))
    assert completed.returncode == 2
    assert "--validation-fraction: 1.5 is not in [0, 1)" in completed.stderr
    assert not (tmp_path / "out.npz").exists()


def test_prepare_without_a_label_store_says_so_in_one_line(tmp_path):
    output = tmp_path / "out.npz"
    completed = run_cli("prepare", "--labels-dir", str(tmp_path / "nowhere"), "--output", str(output))
    assert_one_line_error(completed, "prepare", "labels directory", "nowhere", "does not exist")
    assert not output.exists()


def test_prepare_refuses_an_empty_store(tmp_path):
    (tmp_path / "labels").mkdir()
    output = tmp_path / "out.npz"
    completed = run_cli("prepare", "--labels-dir", str(tmp_path / "labels"), "--output", str(output))
    assert_one_line_error(completed, "prepare", "no usable labelled drawings", "0 sample(s) found")
    assert not output.exists()


def test_prepare_refuses_a_store_of_unusable_samples(tmp_path, small_store):
    for png in small_store.glob("images/*/*.png"):
        png.write_bytes(png.read_bytes()[:100])  # every drawing truncated
    completed = run_cli("prepare", "--labels-dir", str(small_store), "--output", str(tmp_path / "out.npz"))
    assert_one_line_error(completed, "prepare", "20 sample(s) found, none usable")
    assert not (tmp_path / "out.npz").exists()


def test_prepare_succeeds_with_exit_0(tmp_path, small_store):
    output = tmp_path / "out.npz"
    completed = run_cli("prepare", "--labels-dir", str(small_store), "--output", str(output))
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert len(load_prepared_dataset(output).y_train) > 0


def test_finetune_without_a_prepared_dataset_says_run_prepare(tmp_path):
    output = tmp_path / "model.keras"
    completed = run_cli("finetune", "--dataset", str(tmp_path / "missing.npz"), "--output", str(output))
    assert_one_line_error(completed, "finetune", "missing.npz does not exist", "run `prepare` first")
    assert not output.exists()


def test_finetune_without_its_base_model_says_so(tmp_path, small_store):
    dataset = tmp_path / "collected.npz"
    assert run_cli("prepare", "--labels-dir", str(small_store), "--output", str(dataset)).returncode == 0
    completed = run_cli("finetune", "--base-model", str(tmp_path / "gone.keras"), "--dataset", str(dataset),
                        "--output", str(tmp_path / "model.keras"))
    assert_one_line_error(completed, "finetune", "base model", "gone.keras does not exist")


def test_finetune_with_a_missing_mnist_file_says_so(tmp_path, small_store):
    dataset = tmp_path / "collected.npz"
    assert run_cli("prepare", "--labels-dir", str(small_store), "--output", str(dataset)).returncode == 0
    completed = run_cli("finetune", "--dataset", str(dataset), "--mnist-path", str(tmp_path / "mnist.npz"),
                        "--output", str(tmp_path / "model.keras"))
    assert_one_line_error(completed, "finetune", "MNIST file", "does not exist")


def test_finetune_refuses_a_file_that_is_not_a_prepared_dataset(tmp_path):
    not_a_dataset = tmp_path / "collected.npz"
    not_a_dataset.write_bytes(b"this is not an npz file")
    completed = run_cli("finetune", "--dataset", str(not_a_dataset), "--output", str(tmp_path / "model.keras"))
    assert_one_line_error(completed, "finetune", "is not a prepared collected-digits dataset")


def test_finetune_refuses_to_judge_a_model_on_no_held_out_drawings(tmp_path, small_store):
    # Every drawing in training, none held out: the gate would compare nothing and pass anything.
    dataset = tmp_path / "collected.npz"
    assert run_cli("prepare", "--labels-dir", str(small_store), "--output", str(dataset),
                   "--validation-fraction", "0").returncode == 0
    assert len(load_prepared_dataset(dataset).y_validation) == 0
    output = tmp_path / "model.keras"
    completed = run_cli("finetune", "--dataset", str(dataset), "--output", str(output))
    assert_one_line_error(completed, "finetune", "no held-out drawings to validate on")
    assert not output.exists()


def test_an_unexpected_failure_is_a_crash_with_its_traceback(tmp_path, small_store, mnist_path):
    # A model file that exists but is not a model: nothing the command checks
    # for, so it ends as a crash (exit 1) with the traceback to report.
    dataset = tmp_path / "collected.npz"
    assert run_cli("prepare", "--labels-dir", str(small_store), "--output", str(dataset)).returncode == 0
    broken_model = tmp_path / "broken.keras"
    broken_model.write_bytes(b"not a keras archive")
    completed = run_cli("finetune", "--base-model", str(broken_model), "--dataset", str(dataset),
                        "--mnist-path", mnist_path, "--mnist-test-limit", "10",
                        "--output", str(tmp_path / "model.keras"))
    assert completed.returncode == 1, completed.stderr[-2000:]
    assert "Traceback (most recent call last)" in completed.stderr
    assert not (tmp_path / "model.keras").exists()


def test_average_needs_two_models():
    assert_one_line_error(run_cli("average", str(SHIPPED_MODEL), "--output", "unused.keras"),
                          "average", "at least two")


def test_average_says_which_model_is_missing(tmp_path):
    missing = str(tmp_path / "nowhere.keras")
    completed = run_cli("average", str(SHIPPED_MODEL), missing, "--output", str(tmp_path / "out.keras"))
    assert_one_line_error(completed, "average", missing)
    assert not (tmp_path / "out.keras").exists()
