"""The penalties app in the admin, one module per concern; importing them registers them.

- violations: the catalog, violations (record, confirm, reject) and evidence
- restrictions: measures (impose, withdraw, lift) with their statements of reasons
- policies: policy versions (draft, activate)

The trader page's credit record (breakdown, score chart, measures) is drawn by the
`credit_record` template tag (penalties/templatetags), because traders may not import
penalties.
"""

from __future__ import annotations

from penalties.admin import policies, restrictions, violations

__all__ = ["policies", "restrictions", "violations"]
