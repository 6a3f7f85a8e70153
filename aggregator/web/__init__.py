"""HTTP entry point: the FastAPI application serving feeds, OPML, the JSON API and health."""

from aggregator.web.app import create_app

__all__ = ["create_app"]
