"""Command line: the notebooks' steps without Jupyter.

    python -m digit_recognition train --output flask_app/model/digit_cnn.keras
    python -m digit_recognition average A.keras B.keras --output flask_app/model/digit_cnn.keras
    python -m digit_recognition prepare [--labels-dir DIR] [--output artifacts/collected_digits.npz]
    python -m digit_recognition finetune [--base-model M] [--dataset D] [--output O]
    python -m digit_recognition labels {migrate, import DIR, sweep}   (see label_cli)
    python -m digit_recognition convert MODEL.keras [--mnist-path P] [--pen-digits-path P]

`prepare` and `finetune` call the same functions as custom_data_preparation.ipynb
and model_training.ipynb's "Finetuning" section.

Exit status, so a scheduled job can chain the steps safely:

    0  done (finetune: the new model passed the acceptance gate and was written)
    1  crashed: an unexpected error, with its traceback (a bug to report)
    2  usage error or missing/unusable input (a one-line message; nothing written)
    3  finetune: the new model failed the acceptance gate (nothing written);
       convert: LiteRT would answer differently from Keras (nothing written)

`convert` gives an existing .keras its .tflite for the server (train and
finetune write both already), checked on MNIST_PATH / PEN_DIGITS_PATH when set.

TensorFlow is imported only by the step that needs it, so `--help` and usage
errors answer at once.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_OK = 0
EXIT_CRASH = 1  # what Python itself returns for an uncaught exception
EXIT_USAGE = 2  # what argparse returns for bad arguments; missing input too
EXIT_NOT_ACCEPTED = 3

PROG = "python -m digit_recognition"


class InputMissing(Exception):
    """An input the command was pointed at is not there."""


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1)."""
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not in [0, 1)")
    return value


def build_parser() -> argparse.ArgumentParser:
    # Only the light modules: finetuning defers its TensorFlow imports.
    from . import finetuning

    parser = argparse.ArgumentParser(
        prog=PROG, description="Train, prepare collected drawings, fine-tune.",
        epilog="exit status: 0 done, 1 crashed, 2 usage error or missing input, "
               "3 finetune: model not accepted")
    commands = parser.add_subparsers(dest="command", required=True)

    # Defaults left as None here fall back to the recipe's own defaults
    # (TrainingConfig, FinetuneConfig), so each lives in one place.
    train_cmd = commands.add_parser("train", help="train the CNN from scratch on MNIST (+ pen digits)")
    train_cmd.add_argument("--output", required=True, help="model file to write (.keras)")
    train_cmd.add_argument("--mnist-path", help="MNIST .npz (default: $MNIST_PATH, else download)")
    train_cmd.add_argument("--pen-digits-path", help="pen digits .jsonl.gz (default: $PEN_DIGITS_PATH)")
    train_cmd.add_argument("--pen-chars-path", help="pen letters and symbols .jsonl.gz, the not-a-digit "
                                                    "examples (default: $PEN_CHARS_PATH)")
    train_cmd.add_argument("--init-from", help="start from this model's weights instead of from scratch")
    train_cmd.add_argument("--epochs", type=int, help="default: TrainingConfig's")
    train_cmd.add_argument("--learning-rate", type=float, help="default: TrainingConfig's")
    train_cmd.add_argument("--renders-per-pen-digit", type=int, help="default: TrainingConfig's")
    train_cmd.add_argument("--renders-per-pen-char", type=int, help="default: TrainingConfig's")
    train_cmd.add_argument("--synthetic-non-digits", type=int, help="default: TrainingConfig's")
    train_cmd.add_argument("--warp", type=float, help="augmentation: smooth random bend, pixels s.d. "
                                                     "(default: TrainingConfig's, off)")
    train_cmd.add_argument("--shear", type=float, help="augmentation: random slant, x shift per row "
                                                      "(default: TrainingConfig's, off)")
    train_cmd.add_argument("--stroke-distortion", type=float,
                           help="augmentation: strokes placed as another hand would, 1 = stroke_distortion's "
                                "stated sizes (default: TrainingConfig's)")
    train_cmd.add_argument("--train-on-calibration-chars", action=argparse.BooleanOptionalAction, default=None,
                           help="train on the calibration writers' letters and symbols too; their digits "
                                "stay held back (default: TrainingConfig's)")
    train_cmd.add_argument("--mnist-train-limit", type=int)
    train_cmd.add_argument("--pen-digit-limit", type=int)
    train_cmd.add_argument("--seed", type=int, default=0)

    average_cmd = commands.add_parser(
        "average", help="one model averaging trained models' answers, calibrated and measured as train does")
    average_cmd.add_argument("members", nargs="+", help="trained .keras models (two or more)")
    average_cmd.add_argument("--output", required=True, help="model file to write (.keras)")
    average_cmd.add_argument("--mnist-path", help="MNIST .npz (default: $MNIST_PATH, else download)")
    average_cmd.add_argument("--pen-digits-path", help="pen digits .jsonl.gz (default: $PEN_DIGITS_PATH)")
    average_cmd.add_argument("--pen-chars-path", help="pen letters and symbols .jsonl.gz (default: $PEN_CHARS_PATH)")
    average_cmd.add_argument("--synthetic-non-digits", type=int,
                             help="as the members were trained with: a tenth of it are calibration shapes "
                                  "(default: TrainingConfig's)")
    average_cmd.add_argument("--seed", type=int, default=0,
                             help="the rendering seed; the members' own gives their held-back drawings exactly")

    prepare_cmd = commands.add_parser("prepare", help="turn the label store into a dataset file for finetune")
    prepare_cmd.add_argument("--labels-dir", help="the label store (default: $LABELS_DIR, else the app's)")
    prepare_cmd.add_argument("--output", default=str(finetuning.DEFAULT_DATASET_PATH),
                             help="dataset file to write (.npz; default: %(default)s)")
    prepare_cmd.add_argument("--validation-fraction", type=fraction, default=0.2,
                             help="share of drawings held out to validate on (default: %(default)s)")
    prepare_cmd.add_argument("--seed", type=int, default=0)

    defaults = finetuning.FinetuneConfig("", "")
    finetune_cmd = commands.add_parser("finetune", help="fine-tune a model on the prepared drawings + MNIST")
    finetune_cmd.add_argument("--base-model", help="model to start from (default: $MODEL_PATH, else the shipped one)")
    finetune_cmd.add_argument("--dataset", default=str(finetuning.DEFAULT_DATASET_PATH),
                              help="prepared dataset (default: %(default)s)")
    finetune_cmd.add_argument("--output", default=str(finetuning.DEFAULT_FINETUNED_MODEL_PATH),
                              help="model file to write (.keras; default: %(default)s)")
    finetune_cmd.add_argument("--mnist-path", help="MNIST .npz (default: $MNIST_PATH, else download)")
    finetune_cmd.add_argument("--epochs", type=int, default=defaults.epochs)
    finetune_cmd.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    finetune_cmd.add_argument("--mnist-samples", type=int, default=defaults.mnist_samples,
                              help="MNIST digits mixed in per epoch (default: %(default)s)")
    finetune_cmd.add_argument("--collected-repeats", type=int, default=defaults.collected_repeats,
                              help="times each collected drawing is shown per epoch (default: %(default)s)")
    finetune_cmd.add_argument("--max-mnist-drop", type=float, default=defaults.max_mnist_drop,
                              help="largest MNIST test accuracy drop accepted, as a fraction (default: %(default)s)")
    finetune_cmd.add_argument("--mnist-test-limit", type=int,
                              help="evaluate on the first N MNIST test digits only (quick runs)")
    finetune_cmd.add_argument("--no-acceptance-check", action="store_true",
                              help="save the model even if it is worse than the base model, or cannot be "
                                   "checked (no held-out drawings)")
    finetune_cmd.add_argument("--seed", type=int, default=0)

    convert_cmd = commands.add_parser("convert", help="write MODEL.tflite beside MODEL.keras for the server")
    convert_cmd.add_argument("model", help="the .keras file")
    convert_cmd.add_argument("--mnist-path", help="MNIST .npz to check on (default: $MNIST_PATH)")
    convert_cmd.add_argument("--pen-digits-path", help="pen digits to check on (default: $PEN_DIGITS_PATH)")

    from . import label_cli

    label_cli.add_parser(commands)
    return parser


def require_file(path: str | os.PathLike | None, what: str, hint: str = "") -> None:
    """Fail with one line, before TensorFlow loads, if a named input is missing."""
    if path and not Path(path).is_file():
        raise InputMissing(f"{what} {path} does not exist{hint}")


def run_train(args) -> int:
    from .datasets import MNIST_PATH_ENV, PEN_DIGITS_PATH_ENV
    from .non_digits import PEN_CHARS_PATH_ENV
    from .training import TrainingConfig, train

    require_file(args.mnist_path or os.environ.get(MNIST_PATH_ENV), "MNIST file")
    require_file(args.pen_digits_path or os.environ.get(PEN_DIGITS_PATH_ENV), "pen digits file")
    require_file(args.pen_chars_path or os.environ.get(PEN_CHARS_PATH_ENV), "pen characters file")
    require_file(args.init_from, "model file")
    chosen = {name: getattr(args, name) for name in ("epochs", "learning_rate", "renders_per_pen_digit",
                                                     "renders_per_pen_char", "synthetic_non_digits", "warp", "shear",
                                                     "stroke_distortion", "train_on_calibration_chars")
              if getattr(args, name) is not None}
    config = TrainingConfig(mnist_path=args.mnist_path, pen_digits_path=args.pen_digits_path,
                            pen_chars_path=args.pen_chars_path, init_model_path=args.init_from,
                            mnist_train_limit=args.mnist_train_limit, pen_digit_limit=args.pen_digit_limit,
                            seed=args.seed, **chosen)
    train(config, output_path=args.output)
    return EXIT_OK


def run_average(args) -> int:
    from .datasets import MNIST_PATH_ENV, PEN_DIGITS_PATH_ENV
    from .non_digits import PEN_CHARS_PATH_ENV

    if len(args.members) < 2:
        raise InputMissing("an average needs at least two models")
    for member in args.members:
        require_file(member, "model file")
    require_file(args.mnist_path or os.environ.get(MNIST_PATH_ENV), "MNIST file")
    require_file(args.pen_digits_path or os.environ.get(PEN_DIGITS_PATH_ENV), "pen digits file")
    require_file(args.pen_chars_path or os.environ.get(PEN_CHARS_PATH_ENV), "pen characters file")
    from .training import TrainingConfig, train_average  # TensorFlow: only once the inputs are there

    chosen = {"synthetic_non_digits": args.synthetic_non_digits} if args.synthetic_non_digits is not None else {}
    config = TrainingConfig(mnist_path=args.mnist_path, pen_digits_path=args.pen_digits_path,
                            pen_chars_path=args.pen_chars_path, seed=args.seed, **chosen)
    train_average(args.members, config, output_path=args.output)
    return EXIT_OK


def run_prepare(args) -> int:
    from . import finetuning, label_cli
    from .paths import labels_dir_from_environment

    labels_dir = Path(args.labels_dir or labels_dir_from_environment())
    if not labels_dir.is_dir():  # opening a store would create it, empty
        raise InputMissing(f"labels directory {labels_dir} does not exist")
    store = label_cli.open_store_from_environment(str(labels_dir))
    finetuning.prepare_collected_dataset(store, args.output,
                                         validation_fraction=args.validation_fraction, seed=args.seed)
    return EXIT_OK


def run_finetune(args) -> int:
    from . import finetuning
    from .datasets import MNIST_PATH_ENV

    base_model = str(args.base_model or finetuning.served_model_path())
    require_file(base_model, "base model")
    require_file(args.dataset, "prepared dataset", ": run `prepare` first")
    require_file(args.mnist_path or os.environ.get(MNIST_PATH_ENV), "MNIST file")
    config = finetuning.FinetuneConfig(
        base_model_path=base_model, dataset_path=args.dataset, mnist_path=args.mnist_path,
        epochs=args.epochs, learning_rate=args.learning_rate, mnist_samples=args.mnist_samples,
        collected_repeats=args.collected_repeats, max_mnist_drop=args.max_mnist_drop,
        check_acceptance=not args.no_acceptance_check, mnist_test_limit=args.mnist_test_limit,
        seed=args.seed)
    result = finetuning.finetune(config, output_path=args.output)
    print(result.summary())
    return EXIT_OK if result.accepted else EXIT_NOT_ACCEPTED


def run_labels(args) -> int:
    from . import label_cli

    return label_cli.run(args)


def run_convert(args) -> int:
    from .conversion import ConversionError, conversion_check_set, convert_model_file

    require_file(args.model, "model file")
    images, check_set = conversion_check_set(args.mnist_path, args.pen_digits_path)
    try:
        convert_model_file(args.model, images, check_set)
    except ConversionError as exc:
        print(exc)
        return EXIT_NOT_ACCEPTED
    return EXIT_OK


COMMANDS = {"train": run_train, "average": run_average, "prepare": run_prepare, "finetune": run_finetune,
            "convert": run_convert, "labels": run_labels}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)  # exits 2 with argparse's one-line message
    from .finetuning import CollectedDataError

    try:
        return COMMANDS[args.command](args)
    except (InputMissing, FileNotFoundError, NotADirectoryError, CollectedDataError) as exc:
        # The user's to fix, not a bug: one line, argparse's format, no traceback.
        message = str(exc) if not isinstance(exc, OSError) or not exc.filename else \
            f"{exc.strerror or exc}: {exc.filename}"
        print(f"{PROG} {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    # Anything else propagates: Python prints the traceback and exits 1.


if __name__ == "__main__":
    raise SystemExit(main())
