"""Test suite. jsii must run on the venv's Node 24, even when pytest is called without make."""

import os
import sys
from pathlib import Path

_VENV_BIN = str(Path(sys.executable).parent)
if not os.environ.get("PATH", "").startswith(_VENV_BIN):
    os.environ["PATH"] = _VENV_BIN + os.pathsep + os.environ.get("PATH", "")
