"""What the poll workers' fork server imports before it forks them (``PollWorkers``).

The workers' modules (fetch, parse, normalize, classify), then ``gc.freeze()``: each worker
starts with them loaded and shares their pages with the fork server instead of importing a
copy of its own. Frozen objects are never scanned by the collector, whose passes would
otherwise write to every one of them in each worker and so unshare their pages. Only the fork
server imports this module.
"""

from __future__ import annotations

import gc

from aggregator.polling import pipeline, workers  # noqa: F401
from aggregator.polling.fetch import configured  # noqa: F401

gc.freeze()
