"""Keep the garbage collector's full collections short on a serving worker.

A worker holds a few hundred thousand long-lived objects (scikit-learn, pandas, BentoML,
and in the drift worker Evidently: about 180,000 and 350,000 here). CPython's full (gen2)
collection walks all of them; under load it ran every 10-15 s and stopped the event loop
for 0.2-1.2 s each time, which was the service's p99 and its latency "ageing" in the soak.
Objects alive once the worker is loaded will live as long as the process, so they are moved
to the permanent generation (`gc.freeze`), which collections skip. Reference counting still
frees them; only cycle detection ignores them.
"""

from __future__ import annotations

import gc


def freeze_loaded_objects() -> int:
    """Collect what start-up left behind, then exempt the survivors from future collections.
    Call once everything long-lived is loaded; returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
