"""The Python originals of the ports under ``tests/fixtures``, loaded from their files (they are not a package)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any


def load_original(path: Path, class_name: str) -> Any:
    """A fresh instance of the class ``class_name`` defined in the file ``path``."""
    spec = importlib.util.spec_from_file_location(f"original_{path.parent.name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, class_name)()
