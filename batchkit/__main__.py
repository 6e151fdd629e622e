"""``python -m batchkit``: the same CLI as the ``batchkit`` command."""

from __future__ import annotations

from batchkit.cli import main

raise SystemExit(main())
