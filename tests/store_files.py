"""Looking at everything a label store directory holds, for the label-store tests."""
from __future__ import annotations

from pathlib import Path


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` (hidden ones too) with its content."""
    root = Path(root)
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def sample_files(root: Path) -> dict[str, list[str]]:
    """The store's image files by kind: png, temp (hidden .tmp) and other."""
    kinds: dict[str, list[str]] = {"png": [], "temp": [], "other": []}
    for path in sorted(Path(root).glob("images/*/*")):
        name = path.name
        if name.startswith(".") and name.endswith(".tmp"):
            kinds["temp"].append(str(path))
        elif name.endswith(".png") and path.parent.name == name[:2]:
            kinds["png"].append(str(path))
        else:
            kinds["other"].append(str(path))
    return kinds


def image_files(root: Path) -> dict[str, bytes]:
    """Every file under `root`/images with its content (what a refused write must not leave)."""
    return snapshot(Path(root) / "images")


def stored_samples(root: Path) -> list:
    """The samples a label store at `root` holds, oldest first, read through its API."""
    from digit_recognition.label_store import LabelStore

    from digit_recognition.paths import DEFAULT_DATABASE_NAME

    if not (Path(root) / DEFAULT_DATABASE_NAME).exists():
        return []
    store = LabelStore(root)
    try:
        return sorted(store.iter_samples(), key=lambda record: (record.created_at, record.id))
    finally:
        store.close()
