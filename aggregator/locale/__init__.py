"""The gettext catalogs of the outputs' labels: ``messages.pot`` (extracted from the code) and
one ``{lang}/LC_MESSAGES/messages.po`` per reader language, read by ``aggregator.i18n``."""
