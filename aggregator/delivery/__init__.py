"""Webhooks for downstream sites: which changes become events (``detect``, with the source
health alerts of ``health``), the subscribers editors configure (``subscribers``), signing
(``signing``), and sending from the database queue with retries (``sender``, ``dispatcher``).
"""
