"""The polling stage: which sources are due, fetching them politely, parsing and normalizing
what they return, and handing one update per source to the store.
"""
