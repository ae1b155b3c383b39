"""Fixtures for the bundle tests (pure pytest: no Django needed)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # lets the test modules `import builders` whatever the import mode
    sys.path.insert(0, str(HERE))
