"""Feed aggregator: polls sources, clusters stories across sources and languages, republishes.

Nothing is built at import time; entry points (``aggregator.cli``, ``aggregator.web``,
``aggregator.runtime.scheduler``) build settings, engine and sessions once and pass them down.
"""

__version__ = "0.1.0"
