"""Untrusted input handled safely: which addresses a fetch may reach, XML entity defusing,
HTML sanitizing, and text stripped of terminal controls before the command line prints it.
"""
