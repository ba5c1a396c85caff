"""Speed of the label store: saving, listing and exporting N samples.

Baselines, measured in the same run on the same files:
  - save: writing the same bytes to a file with open().write() and no fsync
    (what a naive store would do) against LabelStore.save (decode, re-encode,
    two atomic fsynced writes);
  - list: the I/O floor (listing the digit directories and reading every JSON
    file's bytes) against LabelStore.list() (which also parses, validates,
    pairs each JSON with its PNG, filters and sorts), cold (a new process) and
    warm (a running server, which re-reads only the sidecars that changed).

    python benchmarks/label_store.py [--samples 1000] [--dir DIR]
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from digit_recognition.label_store import LabelStore  # noqa: E402
from testing_support.drawings import digit_png  # noqa: E402


def timed(function, repeat: int = 5) -> float:
    """Median seconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def read_all_json(root: Path) -> int:
    total = 0
    for digit in range(10):
        directory = root / str(digit)
        for name in os.listdir(directory):
            if name.endswith(".json"):
                total += len((directory / name).read_bytes())
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--dir", help="where to create the store (default: a temp dir); its disk is measured")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        store = LabelStore(Path(scratch) / "labels")
        drawings = [digit_png(i % 10, seed=i) for i in range(50)]

        naive_dir = Path(scratch) / "naive"
        naive_dir.mkdir()
        start = time.perf_counter()
        for i in range(200):
            with open(naive_dir / f"{i}.png", "wb") as handle:
                handle.write(drawings[i % 50])
        naive_ms = (time.perf_counter() - start) / 200 * 1000

        start = time.perf_counter()
        for i in range(args.samples):
            store.save(drawings[i % 50], i % 10, prediction=(i * 7) % 10, confidence=0.5, model_version="bench")
        save_ms = (time.perf_counter() - start) / args.samples * 1000
        print(f"save, per sample:   naive open/write {naive_ms:6.2f} ms   LabelStore.save {save_ms:6.2f} ms "
              f"(decode + re-encode + 2 fsynced atomic writes)")

        floor = timed(lambda: read_all_json(store.root))
        cold = timed(lambda: LabelStore(store.root).list(limit=100))  # a fresh process: reads every JSON
        store.list()
        warm = timed(lambda: store.list(limit=100))  # a running server: stats, re-reads what changed
        one_digit = timed(lambda: store.list(label=3, limit=100))
        disagreed = timed(lambda: store.list(disagreed=True, limit=100))
        print(f"list {args.samples} samples: I/O floor (read every JSON) {floor * 1000:6.1f} ms   "
              f"list() cold {cold * 1000:6.1f} ms   warm {warm * 1000:6.1f} ms   "
              f"warm list(label=3) {one_digit * 1000:6.1f} ms   warm list(disagreed=True) {disagreed * 1000:6.1f} ms")

        buffer = io.BytesIO()
        export = timed(lambda: (buffer.seek(0), buffer.truncate(), store.export_zip(buffer)), repeat=3)
        print(f"export {args.samples} samples: {export * 1000:6.0f} ms, {buffer.tell() / 1e6:.1f} MB zip")


if __name__ == "__main__":
    main()
