"""The clustering stage, after the refresher has stored entries: cross-source and cross-language
stories from the dedup core, written back to the store with their evidence.

``stage`` runs it over pending entries (``aggregator poll``, ``run``, ``cluster``); ``evaluation``
runs a labelled file through the same pipeline in a throwaway store (``aggregator eval dedup``).
"""

from aggregator.clustering.stage import (
    DEFAULT_MAX_AGE,
    ClusteringStage,
    Models,
    StageSummary,
)

__all__ = ["DEFAULT_MAX_AGE", "ClusteringStage", "Models", "StageSummary"]
