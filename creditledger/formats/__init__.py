"""Per-language date formats (FORMAT_MODULE_PATH) where Django's defaults do not suit.

Simplified Chinese uses Django's own (2026年11月28日, 2026年11月28日 17:05). English keeps
Django's long dates (Nov. 28, 2026) but writes short ones as ISO dates and times on a
24-hour clock, as the regulator's documents do, never the US month/day order.
Exports and the API are unaffected: they write ISO 8601 whatever the language.
"""
