"""Where the project finds its data, models and configuration."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir() -> Optional[Path]:
    """Directory of real event recordings (holds MANIFEST.md).

    $SNN_AUTONOMY_DATA if set, else `shared/data` next to the source checkout
    (the layout of the development tree and CI); None when neither exists.
    """
    env = os.environ.get("SNN_AUTONOMY_DATA")
    candidates = [Path(env)] if env else []
    candidates += [p / "shared" / "data" for p in PACKAGE_DIR.parents[:3]]
    for c in candidates:
        if (c / "MANIFEST.md").exists():
            return c
    return None
