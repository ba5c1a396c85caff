"""Command line: the notebooks' steps without Jupyter.

    python -m digit_recognition train --output flask_app/model/digit_cnn.keras
    python -m digit_recognition prepare [--labels-dir DIR] [--output artifacts/collected_digits.npz]
    python -m digit_recognition finetune [--base-model M] [--dataset D] [--output O]

`prepare` and `finetune` call the same functions as custom_data_preparation.ipynb
and model_training.ipynb's "Finetuning" section. `finetune` exits with status 1
(and writes nothing) when the new model fails the acceptance gate, so a
scheduled job can chain it safely.
"""
from __future__ import annotations

import argparse

from . import finetuning
from .training import TrainingConfig, train


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m digit_recognition")
    commands = parser.add_subparsers(dest="command", required=True)
    train_cmd = commands.add_parser("train", help="train the CNN from scratch on MNIST (+ pen digits)")
    train_cmd.add_argument("--output", required=True, help="model file to write (.keras)")
    train_cmd.add_argument("--mnist-path", help="MNIST .npz (default: $MNIST_PATH, else download)")
    train_cmd.add_argument("--pen-digits-path", help="pen digits .jsonl.gz (default: $PEN_DIGITS_PATH)")
    train_cmd.add_argument("--pen-chars-path",
                           help="pen letters and symbols .jsonl.gz, the not-a-digit examples (default: $PEN_CHARS_PATH)")
    train_cmd.add_argument("--init-from", help="start from this model's weights instead of from scratch")
    train_cmd.add_argument("--learning-rate", type=float, default=TrainingConfig.learning_rate)
    train_cmd.add_argument("--renders-per-pen-char", type=int, default=TrainingConfig.renders_per_pen_char)
    train_cmd.add_argument("--synthetic-non-digits", type=int, default=TrainingConfig.synthetic_non_digits)
    train_cmd.add_argument("--epochs", type=int, default=TrainingConfig.epochs)
    train_cmd.add_argument("--renders-per-pen-digit", type=int, default=TrainingConfig.renders_per_pen_digit)
    train_cmd.add_argument("--mnist-train-limit", type=int)
    train_cmd.add_argument("--pen-digit-limit", type=int)
    train_cmd.add_argument("--seed", type=int, default=0)

    prepare_cmd = commands.add_parser("prepare", help="turn the label store into a dataset file for finetune")
    prepare_cmd.add_argument("--labels-dir", help="the label store (default: $LABELS_DIR, else the app's)")
    prepare_cmd.add_argument("--output", default=str(finetuning.DEFAULT_DATASET_PATH),
                             help="dataset file to write (.npz; default: %(default)s)")
    prepare_cmd.add_argument("--validation-fraction", type=float, default=0.2)
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
                              help="save the model even if it is worse than the base model")
    finetune_cmd.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    if args.command == "train":
        config = TrainingConfig(mnist_path=args.mnist_path, pen_digits_path=args.pen_digits_path,
                                pen_chars_path=args.pen_chars_path, init_model_path=args.init_from,
                                learning_rate=args.learning_rate, renders_per_pen_char=args.renders_per_pen_char,
                                synthetic_non_digits=args.synthetic_non_digits,
                                epochs=args.epochs, renders_per_pen_digit=args.renders_per_pen_digit,
                                mnist_train_limit=args.mnist_train_limit,
                                pen_digit_limit=args.pen_digit_limit, seed=args.seed)
        train(config, output_path=args.output)
    elif args.command == "prepare":
        labels_dir = args.labels_dir or finetuning.labels_dir_from_environment()
        finetuning.prepare_collected_dataset(labels_dir, args.output,
                                             validation_fraction=args.validation_fraction, seed=args.seed)
    elif args.command == "finetune":
        config = finetuning.FinetuneConfig(
            base_model_path=str(args.base_model or finetuning.served_model_path()),
            dataset_path=args.dataset, mnist_path=args.mnist_path, epochs=args.epochs,
            learning_rate=args.learning_rate, mnist_samples=args.mnist_samples,
            collected_repeats=args.collected_repeats, max_mnist_drop=args.max_mnist_drop,
            check_acceptance=not args.no_acceptance_check, mnist_test_limit=args.mnist_test_limit,
            seed=args.seed)
        result = finetuning.finetune(config, output_path=args.output)
        print(result.summary())
        return 0 if result.accepted else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
