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
import sys


def freeze_loaded_objects() -> int:
    """Collect what start-up left behind, then exempt the survivors from future collections.
    Call once everything long-lived is loaded; returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def shorten_gil_switch(seconds: float = 0.0005) -> None:
    """Let the event loop get the GIL back within 0.5 ms instead of 5 ms.

    The store's and the capture's writer threads are CPU-bound while they encode a batch;
    with the default 5 ms switch interval, every time the event loop released the GIL (each
    await on I/O) it waited up to 5 ms to get it back. Under twice the capacity that convoy
    put the p99 of answered requests at 2-4 s (tests/service/test_overload_shedding.py);
    at 0.5 ms it stays within the shedding bound.
    """
    sys.setswitchinterval(seconds)
