"""``python -m batchkit`` and the ``batchkit`` command (pyproject's entry point).

The command's clock starts here, before the CLI imports pandas and boto3: ``--deadline``
is the whole command's, counted from its start, and on a loaded machine those imports take
seconds (docs/ARCHITECTURE.md §9).
"""

from __future__ import annotations

import gc
import time


def main() -> int:
    started = time.monotonic()
    from batchkit.cli import main as run_command

    code = run_command(started=started)
    # The command is over and none of its objects is needed again: move them out of the
    # cyclic collector's sight (gc.freeze, Python's gc docs) so the interpreter's shutdown
    # does not walk the whole heap of pandas and boto3 once more before the process exits.
    gc.freeze()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
