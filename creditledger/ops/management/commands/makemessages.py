"""Django's makemessages without msgmerge's fuzzy matching.

By default msgmerge gives a new string the translation of a similar old one and marks it
fuzzy; Django then ignores it, and a translator may miss it. Here a new string arrives with
an empty msgstr, which tests/test_i18n.py reports until someone translates it.
"""

from __future__ import annotations

from django.core.management.commands import makemessages


class Command(makemessages.Command):
    msgmerge_options = [*makemessages.Command.msgmerge_options, "--no-fuzzy-matching"]
