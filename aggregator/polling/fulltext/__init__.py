"""Full text of truncated feeds: the stage that fetches opted-in entries' article pages.

``stage`` (``FullTextStage``) picks the entries due a check, fetches their pages through the
poll's own ``Fetcher`` (same host gate, deadlines, size cap, address guard) and stores each
outcome; ``extract`` turns a page into its sanitized main text. It runs after polling, like
clustering, never on the fetch path of feeds.
"""

from aggregator.polling.fulltext.extract import Extracted, ExtractError, extract_main
from aggregator.polling.fulltext.stage import FullTextStage, FullTextSummary

__all__ = ["ExtractError", "Extracted", "FullTextStage", "FullTextSummary", "extract_main"]
