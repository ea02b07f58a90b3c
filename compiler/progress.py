"""Progress bars for long compiles and runs: on a terminal only (tqdm on stderr), silent otherwise,
so logs, pipes and CI output stay as they were."""
from __future__ import annotations

import sys


def progress(items, desc: str, total: int | None = None, unit: str = "it"):
    """`items`, with a tqdm bar on stderr when stderr is a terminal."""
    if not sys.stderr.isatty():
        return items
    from tqdm import tqdm
    return tqdm(items, desc=desc, total=total, unit=unit, leave=False, file=sys.stderr, dynamic_ncols=True)
