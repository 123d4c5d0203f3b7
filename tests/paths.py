"""Where tests find the project and the shared data beside it, wherever the test file sits."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SHARED = ROOT.parent / "shared" / "data"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
