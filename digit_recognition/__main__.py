"""Command line: the notebooks' steps without Jupyter.

    python -m digit_recognition train --output flask_app/model/digit_cnn.keras
"""
from __future__ import annotations

import argparse

from .training import TrainingConfig, train


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m digit_recognition")
    commands = parser.add_subparsers(dest="command", required=True)
    train_cmd = commands.add_parser("train", help="train the CNN from scratch on MNIST (+ pen digits)")
    train_cmd.add_argument("--output", required=True, help="model file to write (.keras)")
    train_cmd.add_argument("--mnist-path", help="MNIST .npz (default: $MNIST_PATH, else download)")
    train_cmd.add_argument("--pen-digits-path", help="pen digits .jsonl.gz (default: $PEN_DIGITS_PATH)")
    train_cmd.add_argument("--epochs", type=int, default=TrainingConfig.epochs)
    train_cmd.add_argument("--renders-per-pen-digit", type=int, default=TrainingConfig.renders_per_pen_digit)
    train_cmd.add_argument("--mnist-train-limit", type=int)
    train_cmd.add_argument("--pen-digit-limit", type=int)
    train_cmd.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    if args.command == "train":
        config = TrainingConfig(mnist_path=args.mnist_path, pen_digits_path=args.pen_digits_path,
                                epochs=args.epochs, renders_per_pen_digit=args.renders_per_pen_digit,
                                mnist_train_limit=args.mnist_train_limit,
                                pen_digit_limit=args.pen_digit_limit, seed=args.seed)
        train(config, output_path=args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
