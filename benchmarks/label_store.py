"""Speed of the label store: saving, listing and exporting N samples.

Baselines, measured in the same run on the same files:
  - save: writing the same bytes to a file with open().write() and no fsync
    (what a naive store would do) against LabelStore.save (decode, re-encode,
    two atomic fsynced writes);
  - list: the same page read with the sqlite3 module and nothing else (the
    floor) against LabelStore.list() (SQLAlchemy, the total, records built).

    python benchmarks/label_store.py [--samples 1000] [--dir DIR]
"""
from __future__ import annotations

import argparse
import io
import sqlite3
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


def raw_page(database: Path) -> int:
    connection = sqlite3.connect(database)
    try:
        rows = connection.execute("SELECT * FROM samples ORDER BY created_at DESC, id DESC LIMIT 100").fetchall()
        connection.execute("SELECT samples FROM store_totals").fetchone()
        return len(rows)
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--dir", help="where to create the store (default: a temp dir); its disk is measured")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        store = LabelStore(Path(scratch) / "labels")
        drawings = [digit_png(i % 10, seed=i) for i in range(args.samples)]  # distinct: no duplicates

        naive_dir = Path(scratch) / "naive"
        naive_dir.mkdir()
        start = time.perf_counter()
        for i in range(200):
            with open(naive_dir / f"{i}.png", "wb") as handle:
                handle.write(drawings[i])
        naive_ms = (time.perf_counter() - start) / 200 * 1000

        start = time.perf_counter()
        for i in range(args.samples):
            store.save(drawings[i], i % 10, prediction=(i * 7) % 10, confidence=0.5, model_version="bench")
        save_ms = (time.perf_counter() - start) / args.samples * 1000
        print(f"save, per sample:   naive open/write {naive_ms:6.2f} ms   LabelStore.save {save_ms:6.2f} ms "
              f"(decode + re-encode + fsynced atomic write + committed row)")

        floor = timed(lambda: raw_page(store.root / "labels.sqlite3"))
        page = timed(lambda: store.list(limit=100))
        one_digit = timed(lambda: store.list(label=3, limit=100))
        disagreed = timed(lambda: store.list(label=3, disagreed=True, limit=100))
        print(f"list {args.samples} samples, a page of 100: sqlite3 floor {floor * 1000:6.1f} ms   "
              f"list() {page * 1000:6.1f} ms   list(label=3) {one_digit * 1000:6.1f} ms   "
              f"list(label=3, disagreed=True) {disagreed * 1000:6.1f} ms")

        buffer = io.BytesIO()
        export = timed(lambda: (buffer.seek(0), buffer.truncate(), store.export_zip(buffer)), repeat=3)
        print(f"export {args.samples} samples: {export * 1000:6.0f} ms, {buffer.tell() / 1e6:.1f} MB zip")


if __name__ == "__main__":
    main()
