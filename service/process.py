"""How every `timeline` process sets up the interpreter, once, as it starts."""

from __future__ import annotations

import gc

# CPython collects its youngest generation after 700 new container objects, and walks
# every live object at each collection of the oldest. A projection keeps tens of
# thousands of decoded events and items alive, and a backfill makes millions of small
# dicts: with the default, a third of a catch-up's Python time went to the collector
# (decision 012).
GC_THRESHOLDS = (20_000, 10, 10)


def tune_gc() -> None:
    """Collect cyclic garbage less often, and never walk what start-up made."""
    gc.freeze()  # modules, classes and settings live as long as the process
    gc.set_threshold(*GC_THRESHOLDS)
