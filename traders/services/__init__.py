"""Writes for traders and shops: each function one transaction that writes its ledger
entry. Split by concern; import from here."""

from __future__ import annotations

from traders.services.apikeys import apikey_issue, apikey_revoke
from traders.services.declarations import ShopDeclared, shops_declare
from traders.services.jurisdictions import jurisdiction_set
from traders.services.shops import shop_payload, shop_register
from traders.services.traders import parse_uscc, trader_payload, trader_register

__all__ = [
    "ShopDeclared",
    "apikey_issue",
    "apikey_revoke",
    "jurisdiction_set",
    "parse_uscc",
    "shop_payload",
    "shop_register",
    "shops_declare",
    "trader_payload",
    "trader_register",
]
