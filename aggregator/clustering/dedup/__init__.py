"""Stories across sources and languages: language detection, near-duplicate and cross-language
matching, and online clustering with recorded evidence.

Pure logic plus two model adapters (``language`` and ``embed``); nothing is loaded at import.
The store and refresh layers call ``FeatureExtractor``, ``Matcher`` and ``Clusterer``.
"""
