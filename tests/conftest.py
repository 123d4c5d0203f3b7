"""Test helpers (fakes of servers, the tiny GGUF, paths) live beside this file; tests in sub-folders import them."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
