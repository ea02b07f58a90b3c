"""Tests of examples/ (not a package): each example is imported from its file."""
import importlib.util
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(name: str, module_name: str):
    """examples/<name>.py as a fresh module called `module_name`."""
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
