"""One results JSON for ``make evaluate``: each evaluation script writes its own top-level key."""

from __future__ import annotations

import json
from pathlib import Path


def merge_into(path: Path, key: str | None, value: dict) -> None:
    """Write ``value`` to ``path`` under ``key`` (other keys kept); the whole file when ``key`` is None."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if key is None:
        doc = value
    else:
        doc = json.loads(path.read_text()) if path.exists() and path.stat().st_size else {}
        doc[key] = value
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
