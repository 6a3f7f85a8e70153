"""The poll benchmark's two categories, for every benchmark that classifies its feeds.

`bench/oursprocs.py` writes the same ids and rules as categories.toml for the processes it
starts; the in-process benchmarks take them from here.
"""

from __future__ import annotations

from aggregator.catalog import CategoryConfig, Rule

CATEGORIES = (
    CategoryConfig(id="world", title="World news"),
    CategoryConfig(
        id="tech",
        title="Technology",
        include=(
            Rule("software", False),
            Rule("semiconductor", False),
            Rule(r"open\s+source", True),
        ),
        exclude=(Rule("football", False),),
    ),
)
