"""Put the repository root on ``sys.path``.

pytest (prepend import mode) puts ``tests/`` on ``sys.path`` because of ``tests/conftest.py``; then
``tests/<stage>/`` (no ``__init__.py``) shadows the real ``<stage>`` package as a namespace package,
since the editable install's finder runs after the path finder. ``pythonpath = ["."]`` under
``[tool.pytest.ini_options]`` in pyproject.toml fixes this for every test directory; remove this file then.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
