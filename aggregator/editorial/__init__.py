"""Editors' configuration at work: classifying entries by the categories' rules, the rules dry
run, editing the TOML files in place, OPML, subscribing to a new feed, and live reload.
"""
