"""Make ``import catalog`` resolve to the package, not to this test folder.

pytest (rootdir-style "prepend" imports, no ``tests/__init__.py``) puts ``tests/`` on ``sys.path``, where
``tests/catalog/`` is found as a namespace package before the editable-install finder is consulted.
Remove this file once ``pythonpath = ["."]`` is set under ``[tool.pytest.ini_options]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROJECT_ROOT = str(Path(__file__).resolve().parents[2])
if PROJECT_ROOT not in sys.path:
    sys.path.insert(0, PROJECT_ROOT)
