"""`python -m digit_recognition labels ...`: the label store's maintenance commands.

    labels migrate               bring the database schema up to date (the app also does it on start)
    labels import DIR            import a store in the old folder layout (idempotent)
    labels sweep [--grace S]     remove crash leftovers now (the app does it in the background)

Each opens the store the web app uses: LABELS_DIR and LABELS_DATABASE_URL from
the environment, or --labels-dir / --database-url.
"""
from __future__ import annotations

import argparse

from .label_import import import_folder
from .label_store import open_store_from_environment


def add_parser(commands) -> None:
    labels = commands.add_parser("labels", help="label store maintenance: migrate, import, sweep")
    labels.add_argument("--labels-dir", help="where the images are (default: $LABELS_DIR, else the app's)")
    labels.add_argument("--database-url", help="the metadata database (default: $LABELS_DATABASE_URL, "
                                               "else labels.sqlite3 in the labels dir)")
    actions = labels.add_subparsers(dest="labels_command", required=True)
    actions.add_parser("migrate", help="create or upgrade the database schema")
    importing = actions.add_parser("import", help="import a store in the old <digit>/<id>.png + .json layout")
    importing.add_argument("source", help="the old store's directory")
    sweeping = actions.add_parser("sweep", help="remove temp files and images no sample names")
    sweeping.add_argument("--grace-seconds", type=float,
                          help="spare leftovers younger than this (default: the store's, 600 s); "
                               "0 only when nothing is writing to the store")


def run(args: argparse.Namespace) -> int:
    store = open_store_from_environment(args.labels_dir, args.database_url)
    try:
        if args.labels_command == "migrate":
            ran = store.ensure_schema()
            print("migrated to the newest schema" if ran else "the schema is up to date")
        elif args.labels_command == "import":
            report = import_folder(store, args.source)
            print(f"imported {report.imported}, already present {report.already_present}, "
                  f"duplicates skipped {report.duplicates}, invalid {sum(report.invalid.values())}")
            for reason, count in sorted(report.invalid.items()):
                print(f"  {count:>6}  {reason}")
        elif args.labels_command == "sweep":
            report = store.sweep(args.grace_seconds)
            print(f"removed {report.temp_files_removed} temp files and "
                  f"{report.orphan_images_removed} images no sample names")
    finally:
        store.close()
    return 0
