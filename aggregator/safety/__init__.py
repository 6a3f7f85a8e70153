"""Untrusted input handled safely: which addresses a fetch may reach, XML entity defusing,
and HTML sanitizing.
"""
