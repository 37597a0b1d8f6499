"""Where the shipped files live."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = PACKAGE_DIR / "checkpoints" / "tiny"
