"""The penalties app in the admin, one module per concern; importing them registers them.

- violations: the catalog, violations (record, confirm, reject) and evidence
- restrictions: measures (impose, withdraw, lift) with their statements of reasons
- policies: policy versions (draft, activate)
- appeals: the trader's remedies (objections, appeals, credit repair) and their queues
- queue: the review queue (pending violations, oldest first), reached from violations

The admin's home page is the staff dashboard (penalties.dashboard, drawn by the
`dashboard_charts` template tags) above the app list.

The trader page's credit record (breakdown, score chart, measures) is drawn by the
`credit_record` template tag (penalties/templatetags), because traders may not import
penalties.
"""

from __future__ import annotations

from django.contrib import admin

from penalties.admin import appeals, policies, queue, restrictions, violations

# Extends whichever admin/index.html the site has, so other blocks on the home page stay.
admin.site.index_template = "admin/penalties/dashboard_index.html"

__all__ = ["appeals", "policies", "queue", "restrictions", "violations"]
