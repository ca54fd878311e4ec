"""Publishing a folder built aside (a cached model, the held-out grown tasks) in one rename, so that runs building
the same folder at once (seeds run in parallel on one machine) never see, or delete, each other's half-built work."""

from __future__ import annotations

import shutil
from pathlib import Path


def publish_folder(tmp: Path, folder: Path, *, marker: str) -> None:
    """Move the finished build ``tmp`` to ``folder``. ``marker`` names the file every finished folder holds: when
    ``folder`` already has it, another run finished the same build first and ours is dropped. A folder without it is
    an interrupted build's leftovers: replaced."""
    if not (folder / marker).exists():
        shutil.rmtree(folder, ignore_errors=True)
        try:
            tmp.rename(folder)
            return
        except OSError:  # another run's rename came between
            if not (folder / marker).exists():
                raise
    shutil.rmtree(tmp, ignore_errors=True)
