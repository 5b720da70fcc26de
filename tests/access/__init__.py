"""The role × action matrix (issue #6): every staff page, form and admin action, tried by
anonymous, an officer, a supervisor and an auditor, against an expectation written down
by hand in MATRIX (tests/access/matrix.py).

MATRIX is not derived from creditledger/roles.py or from the admins' has_*_permission
methods: those are what it checks. The cases are enumerated from the code, so a new view
cannot slip through unnoticed:

- every URL pattern of every ModelAdmin in admin.site._registry (changelist, add, change,
  delete, history, the bare-object redirect, and any custom URL such as the review queue),
  as GET, plus POST for add, change, delete and every custom URL;
- every admin action of every ModelAdmin, site-wide ones included (_get_base_actions()),
  POSTed to the changelist with `action`, `_selected_action` and the confirmation answers;
- the admin site's own pages and the other staff URLs (OTHER_CASES).

In tests/access/test_matrix.py, test_every_url_has_a_case fails for a URL pattern that no
case covers, and test_every_case_has_a_row_and_every_row_a_case for a case that MATRIX
has no row for.

Adding a page (e.g. another branch's jurisdiction admin or two-factor pages):
- a new ModelAdmin, admin URL or action: its cases appear by themselves and the failure
  prints the lines to paste into MATRIX (fill in each role's outcome). Give the model a
  target object in world.py (`targets`, keyed app_label.model_name), and valid add data
  in cases.ADD_DATA (change data in CHANGE_DATA) if some role may add (change).
- any other URL (e.g. /account/two-factor/): add one page("GET url-name", "group") line to
  cases.OTHER_CASES and its row to MATRIX; the failure prints both.

Every cell also watches the database: "done" means the request wrote domain rows (not
just the admin's history), every other outcome that it wrote none at all (PostgreSQL's
per-transaction row counters); so a GET that writes, or a refused POST that changes
anything, ledger included, fails its cell. Each cell runs inside a savepoint that is
rolled back, so all cells of a group share one set of objects and start from the same
state.

Running it alongside other branches: a login-attempt or second-factor table (axes_*,
otp_*) is not watched, and client.force_login must give a fully signed-in session.
"""
