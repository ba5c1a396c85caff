"""The small pen samples committed in tests/fixtures/, which the tests use when
the full files in ../shared/data are absent (tests/conftest.py)."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from digit_recognition.datasets import load_pen_digits
from tests.fixtures import make_pen_samples

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"

DIGITS = FIXTURES / "pen_digits_sample.jsonl.gz"
CHARACTERS = FIXTURES / "pen_chars_sample.jsonl.gz"
WRITER_GROUPS = {"ced", "syn", "app", "apa", "imp"}


def characters(path):
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_samples_are_small_and_say_where_they_come_from():
    assert DIGITS.stat().st_size + CHARACTERS.stat().st_size < 1_000_000
    notes = (FIXTURES / "README.md").read_text(encoding="utf-8")
    assert "UNIPEN train_r01_v07" in notes and "CC BY 4.0" in notes and "Unipen Foundation" in notes


def test_digit_sample_covers_every_writer_group_and_digit():
    digits = load_pen_digits(DIGITS)
    assert 300 <= len(digits) <= 500
    for group in WRITER_GROUPS:
        for label in range(10):
            count = sum(d.label == label and d.writer_group == group for d in digits)
            # test_finetuning.py draws up to 12 of one digit from group ced.
            assert count >= (12 if group == "ced" else 4), (group, label, count)


def test_character_sample_covers_every_writer_group_and_category():
    records = characters(CHARACTERS)
    assert 200 <= len(records) <= 500
    assert {r["writer_group"] for r in records} == WRITER_GROUPS
    assert {r["category"] for r in records} == {"1b", "1c", "1d"}
    assert all(r["strokes"] and isinstance(r["char"], str) for r in records)


def test_samples_are_what_the_script_makes_from_the_full_files(tmp_path, monkeypatch):
    if not (SHARED_DATA / "pen_digits_dev.jsonl.gz").is_file():
        pytest.skip(f"the full pen files are not in {SHARED_DATA}: nothing to compare the samples with")
    monkeypatch.setattr(make_pen_samples, "HERE", tmp_path)
    make_pen_samples.main(SHARED_DATA)
    for name in (DIGITS.name, CHARACTERS.name):
        assert (tmp_path / name).read_bytes() == (FIXTURES / name).read_bytes(), name
