"""Named points where a test can kill training outright (SIGKILL: no cleanup runs), to prove
that a run stopped anywhere leaves both registries consistent or repairable.

TRAINING_KILL_AT=<point> kills the process when it reaches <point>; unset, this is a no-op.
"""

from __future__ import annotations

import os
import signal

POINTS = ("after_first_candidate", "after_register", "after_alias", "after_export")


def kill_point(name: str) -> None:
    assert name in POINTS, name
    if os.environ.get("TRAINING_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
