"""The expectation: what each role gets from each case. Written by hand, never derived
from the permission code under test; see tests/access/__init__.py."""

from __future__ import annotations

ROLES = ("anonymous", "officer", "supervisor", "auditor")

# Outcomes:
#   ok       200
#   next     302 to somewhere other than the login page (the next step)
#   login    302 to the admin login page
#   403 404 405   that status
#   done     (POST) 200 or 302, something was written, and the ledger recorded it: an entry
#            other than admin.logged, or admin.logged with the domain rows it stands for
#   refused  (admin action) 200 or 302, and nothing was written: the admin offers the
#            role no such action, so Django answers "no action selected"
# Every outcome but "done" also asserts that nothing was written.
#
# case                                                    anonymous officer supervisor auditor
MATRIX = """
# --- the admin site's own pages ---------------------------------------------------------------
GET    admin:index                                             login    ok       ok       ok
GET    admin:login                                             ok       next     next     next
GET    admin:logout                                            next     405      405      405
POST   admin:logout                                            next     done     done     done
GET    admin:password_change                                   login    ok       ok       ok
GET    admin:password_change_done                              login    ok       ok       ok
GET    admin:autocomplete                                      login    ok       ok       ok
GET    admin:jsi18n                                            login    ok       ok       ok
GET    admin:view_on_site                                      login    404      404      404
GET    admin:app_list#api                                      login    ok       ok       ok
GET    admin:app_list#auth                                     login    404      404      404
GET    admin:app_list#otp_totp                                 login    404      404      404
GET    admin:app_list#ledger                                   login    ok       ok       ok
GET    admin:app_list#penalties                                login    ok       ok       ok
GET    admin:app_list#traders                                  login    ok       ok       ok
GET    admin:catch_all                                         login    404      404      404

# --- users and groups: the superuser's, no role sees them -------------------------------------
GET    admin:auth_user_changelist                              login    403      403      403
GET    admin:auth_user_add                                     login    403      403      403
POST   admin:auth_user_add                                     login    403      403      403
GET    admin:auth_user_change                                  login    403      403      403
POST   admin:auth_user_change                                  login    403      403      403
GET    admin:auth_user_delete                                  login    403      403      403
POST   admin:auth_user_delete                                  login    403      403      403
GET    admin:auth_user_history                                 login    403      403      403
GET    admin/auth/user/<path:object_id>/                       login    next     next     next
GET    admin:auth_user_password_change                         login    403      403      403
POST   admin:auth_user_password_change                         login    403      403      403
ACTION auth.user:delete_selected                               login    403      403      403
GET    admin:auth_group_changelist                             login    403      403      403
GET    admin:auth_group_add                                    login    403      403      403
POST   admin:auth_group_add                                    login    403      403      403
GET    admin:auth_group_change                                 login    403      403      403
POST   admin:auth_group_change                                 login    403      403      403
GET    admin:auth_group_delete                                 login    403      403      403
POST   admin:auth_group_delete                                 login    403      403      403
GET    admin:auth_group_history                                login    403      403      403
GET    admin/auth/group/<path:object_id>/                      login    next     next     next
ACTION auth.group:delete_selected                              login    403      403      403

# --- two-factor devices and jurisdictions: the superuser's, no role sees them -----------------
GET    admin:otp_totp_totpdevice_changelist                    login    403      403      403
GET    admin:otp_totp_totpdevice_add                           login    403      403      403
POST   admin:otp_totp_totpdevice_add                           login    403      403      403
GET    admin:otp_totp_totpdevice_change                        login    403      403      403
POST   admin:otp_totp_totpdevice_change                        login    403      403      403
GET    admin:otp_totp_totpdevice_delete                        login    403      403      403
POST   admin:otp_totp_totpdevice_delete                        login    403      403      403
GET    admin:otp_totp_totpdevice_history                       login    403      403      403
GET    admin/otp_totp/totpdevice/<path:object_id>/             login    next     next     next
ACTION otp_totp.totpdevice:delete_selected                     login    403      403      403
ACTION otp_totp.totpdevice:reset_second_factor                 login    403      403      403
GET    admin:traders_staffjurisdiction_changelist              login    403      403      403
GET    admin:traders_staffjurisdiction_add                     login    403      403      403
POST   admin:traders_staffjurisdiction_add                     login    403      403      403
GET    admin:traders_staffjurisdiction_change                  login    403      403      403
POST   admin:traders_staffjurisdiction_change                  login    403      403      403
GET    admin:traders_staffjurisdiction_delete                  login    403      403      403
POST   admin:traders_staffjurisdiction_delete                  login    403      403      403
GET    admin:traders_staffjurisdiction_history                 login    403      403      403
GET    admin/traders/staffjurisdiction/<path:object_id>/       login    next     next     next
ACTION traders.staffjurisdiction:delete_selected               login    403      403      403

# --- the ledger: read-only for every role -------------------------------------------------------
GET    admin:ledger_ledgerentry_changelist                     login    ok       ok       ok
GET    admin:ledger_ledgerentry_add                            login    403      403      403
POST   admin:ledger_ledgerentry_add                            login    403      403      403
GET    admin:ledger_ledgerentry_change                         login    ok       ok       ok
POST   admin:ledger_ledgerentry_change                         login    403      403      403
GET    admin:ledger_ledgerentry_delete                         login    403      403      403
POST   admin:ledger_ledgerentry_delete                         login    403      403      403
GET    admin:ledger_ledgerentry_history                        login    ok       ok       ok
GET    admin/ledger/ledgerentry/<path:object_id>/              login    next     next     next
ACTION ledger.ledgerentry:delete_selected                      login    refused  refused  refused
GET    admin:ledger_checkpoint_changelist                      login    ok       ok       ok
GET    admin:ledger_checkpoint_add                             login    403      403      403
POST   admin:ledger_checkpoint_add                             login    403      403      403
GET    admin:ledger_checkpoint_change                          login    ok       ok       ok
POST   admin:ledger_checkpoint_change                          login    403      403      403
GET    admin:ledger_checkpoint_delete                          login    403      403      403
POST   admin:ledger_checkpoint_delete                          login    403      403      403
GET    admin:ledger_checkpoint_history                         login    ok       ok       ok
GET    admin/ledger/checkpoint/<path:object_id>/               login    next     next     next
ACTION ledger.checkpoint:delete_selected                       login    refused  refused  refused

# --- witnesses and their cosignatures: the superuser's (auditors see them on the audit page)
GET    admin:ledger_witness_changelist                         login    403      403      403
GET    admin:ledger_witness_add                                login    403      403      403
POST   admin:ledger_witness_add                                login    403      403      403
GET    admin:ledger_witness_history                            login    403      403      403
GET    admin:ledger_witness_delete                             login    403      403      403
POST   admin:ledger_witness_delete                             login    403      403      403
GET    admin:ledger_witness_change                             login    403      403      403
POST   admin:ledger_witness_change                             login    403      403      403
GET    admin/ledger/witness/<path:object_id>/                  login    next     next     next
ACTION ledger.witness:delete_selected                          login    403      403      403
GET    admin:ledger_cosignature_changelist                     login    403      403      403
GET    admin:ledger_cosignature_add                            login    403      403      403
POST   admin:ledger_cosignature_add                            login    403      403      403
GET    admin:ledger_cosignature_history                        login    403      403      403
GET    admin:ledger_cosignature_delete                         login    403      403      403
POST   admin:ledger_cosignature_delete                         login    403      403      403
GET    admin:ledger_cosignature_change                         login    403      403      403
POST   admin:ledger_cosignature_change                         login    403      403      403
GET    admin/ledger/cosignature/<path:object_id>/              login    next     next     next
ACTION ledger.cosignature:delete_selected                      login    403      403      403
ACTION ledger.witness:retire                                   login    403      403      403

# --- platform API keys: supervisors only, even to look ------------------------------------------
GET    admin:traders_apikey_changelist                         login    403      ok       403
GET    admin:traders_apikey_add                                login    403      ok       403
POST   admin:traders_apikey_add                                login    403      done     403
GET    admin:traders_apikey_change                             login    403      ok       403
POST   admin:traders_apikey_change                             login    403      403      403
GET    admin:traders_apikey_delete                             login    403      403      403
POST   admin:traders_apikey_delete                             login    403      403      403
GET    admin:traders_apikey_history                            login    403      ok       403
GET    admin/traders/apikey/<path:object_id>/                  login    next     next     next
ACTION traders.apikey:delete_selected                          login    403      refused  403
ACTION traders.apikey:revoke                                   login    403      done     403

# --- webhooks: everyone reads, supervisors configure and replay ---------------------------------
GET    admin:traders_webhookendpoint_changelist                login    ok       ok       ok
GET    admin:traders_webhookendpoint_add                       login    403      ok       403
POST   admin:traders_webhookendpoint_add                       login    403      done     403
GET    admin:traders_webhookendpoint_change                    login    ok       ok       ok
POST   admin:traders_webhookendpoint_change                    login    403      done     403
GET    admin:traders_webhookendpoint_delete                    login    403      403      403
POST   admin:traders_webhookendpoint_delete                    login    403      403      403
GET    admin:traders_webhookendpoint_history                   login    ok       ok       ok
GET    admin/traders/webhookendpoint/<path:object_id>/         login    next     next     next
ACTION traders.webhookendpoint:delete_selected                 login    refused  refused  refused
# A ping writes nothing (no entry, no delivery row): for the supervisor who may send one,
# "refused" only says so; tests/api/test_devex.py checks that it is sent.
ACTION traders.webhookendpoint:send_ping                       login    refused  refused  refused
ACTION traders.webhookendpoint:rotate_secret                   login    refused  done     refused
ACTION traders.webhookendpoint:retire_previous_secret          login    refused  done     refused
GET    admin:api_webhookdelivery_changelist                    login    ok       ok       ok
GET    admin:api_webhookdelivery_add                           login    403      403      403
POST   admin:api_webhookdelivery_add                           login    403      403      403
GET    admin:api_webhookdelivery_change                        login    ok       ok       ok
POST   admin:api_webhookdelivery_change                        login    403      403      403
GET    admin:api_webhookdelivery_delete                        login    403      403      403
POST   admin:api_webhookdelivery_delete                        login    403      403      403
GET    admin:api_webhookdelivery_history                       login    ok       ok       ok
GET    admin/api/webhookdelivery/<path:object_id>/             login    next     next     next
ACTION api.webhookdelivery:delete_selected                     login    refused  refused  refused
ACTION api.webhookdelivery:replay                              login    refused  done     refused

# --- traders and shops: officers and supervisors register, nobody edits or deletes --------------
GET    admin:traders_trader_changelist                         login    ok       ok       ok
GET    admin:traders_trader_add                                login    ok       ok       403
POST   admin:traders_trader_add                                login    done     done     403
GET    admin:traders_trader_change                             login    ok       ok       ok
POST   admin:traders_trader_change                             login    403      403      403
GET    admin:traders_trader_delete                             login    403      403      403
POST   admin:traders_trader_delete                             login    403      403      403
GET    admin:traders_trader_history                            login    ok       ok       ok
GET    admin/traders/trader/<path:object_id>/                  login    next     next     next
ACTION traders.trader:delete_selected                          login    refused  refused  refused
GET    admin:traders_shop_changelist                           login    ok       ok       ok
GET    admin:traders_shop_add                                  login    ok       ok       403
POST   admin:traders_shop_add                                  login    done     done     403
GET    admin:traders_shop_change                               login    ok       ok       ok
POST   admin:traders_shop_change                               login    403      403      403
GET    admin:traders_shop_delete                               login    403      403      403
POST   admin:traders_shop_delete                               login    403      403      403
GET    admin:traders_shop_history                              login    ok       ok       ok
GET    admin/traders/shop/<path:object_id>/                    login    next     next     next
ACTION traders.shop:delete_selected                            login    refused  refused  refused

# --- platforms and the violation catalog: supervisors maintain them -----------------------------
GET    admin:traders_platform_changelist                       login    ok       ok       ok
GET    admin:traders_platform_add                              login    403      ok       403
POST   admin:traders_platform_add                              login    403      done     403
GET    admin:traders_platform_change                           login    ok       ok       ok
POST   admin:traders_platform_change                           login    403      done     403
GET    admin:traders_platform_delete                           login    403      403      403
POST   admin:traders_platform_delete                           login    403      403      403
GET    admin:traders_platform_history                          login    ok       ok       ok
GET    admin/traders/platform/<path:object_id>/                login    next     next     next
ACTION traders.platform:delete_selected                        login    refused  refused  refused
GET    admin:penalties_violationtype_changelist                login    ok       ok       ok
GET    admin:penalties_violationtype_add                       login    403      ok       403
POST   admin:penalties_violationtype_add                       login    403      done     403
GET    admin:penalties_violationtype_change                    login    ok       ok       ok
POST   admin:penalties_violationtype_change                    login    403      done     403
GET    admin:penalties_violationtype_delete                    login    403      403      403
POST   admin:penalties_violationtype_delete                    login    403      403      403
GET    admin:penalties_violationtype_history                   login    ok       ok       ok
GET    admin/penalties/violationtype/<path:object_id>/         login    next     next     next
ACTION penalties.violationtype:delete_selected                 login    refused  refused  refused

# --- violations and evidence: officers record, attach and decide; auditors read -----------------
GET    admin:penalties_violation_changelist                    login    ok       ok       ok
GET    admin:penalties_violation_queue                         login    ok       ok       ok
POST   admin:penalties_violation_queue                         login    ok       ok       ok
GET    admin:penalties_violation_add                           login    ok       ok       403
POST   admin:penalties_violation_add                           login    done     done     403
GET    admin:penalties_violation_change                        login    ok       ok       ok
POST   admin:penalties_violation_change                        login    done     done     403
GET    admin:penalties_violation_delete                        login    403      403      403
POST   admin:penalties_violation_delete                        login    403      403      403
GET    admin:penalties_violation_history                       login    ok       ok       ok
GET    admin/penalties/violation/<path:object_id>/             login    next     next     next
ACTION penalties.violation:delete_selected                     login    refused  refused  refused
ACTION penalties.violation:confirm_selected                    login    done     done     refused
ACTION penalties.violation:reject_selected                     login    done     done     refused
POST   admin:penalties_violation_queue#confirm_selected        login    done     done     refused
POST   admin:penalties_violation_queue#reject_selected         login    done     done     refused
POST   admin:penalties_violation_changelist#grave              login    refused  done     refused
POST   admin:penalties_violation_change#decided                login    403      403      403
GET    admin:penalties_evidence_changelist                     login    ok       ok       ok
GET    admin:penalties_evidence_add                            login    403      403      403
POST   admin:penalties_evidence_add                            login    403      403      403
GET    admin:penalties_evidence_change                         login    ok       ok       ok
POST   admin:penalties_evidence_change                         login    403      403      403
GET    admin:penalties_evidence_delete                         login    403      403      403
POST   admin:penalties_evidence_delete                         login    403      403      403
GET    admin:penalties_evidence_history                        login    ok       ok       ok
GET    admin/penalties/evidence/<path:object_id>/              login    next     next     next
ACTION penalties.evidence:delete_selected                      login    refused  refused  refused
GET    penalties:evidence-download                             login    ok       ok       ok
POST   penalties:evidence-download                             405      405      405      405

# --- remedies: officers enter them, supervisors decide ------------------------------------------
GET    admin:penalties_objection_changelist                    login    ok       ok       ok
GET    admin:penalties_objection_add                           login    ok       ok       403
POST   admin:penalties_objection_add                           login    done     done     403
GET    admin:penalties_objection_change                        login    ok       ok       ok
POST   admin:penalties_objection_change                        login    403      403      403
GET    admin:penalties_objection_delete                        login    403      403      403
POST   admin:penalties_objection_delete                        login    403      403      403
GET    admin:penalties_objection_history                       login    ok       ok       ok
GET    admin/penalties/objection/<path:object_id>/             login    next     next     next
ACTION penalties.objection:delete_selected                     login    refused  refused  refused
ACTION penalties.objection:maintain_selected                   login    refused  done     refused
ACTION penalties.objection:withdraw_selected                   login    refused  done     refused
GET    admin:penalties_appeal_changelist                       login    ok       ok       ok
GET    admin:penalties_appeal_add                              login    ok       ok       403
POST   admin:penalties_appeal_add                              login    done     done     403
GET    admin:penalties_appeal_change                           login    ok       ok       ok
POST   admin:penalties_appeal_change                           login    403      403      403
GET    admin:penalties_appeal_delete                           login    403      403      403
POST   admin:penalties_appeal_delete                           login    403      403      403
GET    admin:penalties_appeal_history                          login    ok       ok       ok
GET    admin/penalties/appeal/<path:object_id>/                login    next     next     next
ACTION penalties.appeal:delete_selected                        login    refused  refused  refused
ACTION penalties.appeal:grant_selected                         login    refused  done     refused
ACTION penalties.appeal:refuse_selected                        login    refused  done     refused
GET    admin:penalties_repairapplication_changelist            login    ok       ok       ok
GET    admin:penalties_repairapplication_add                   login    ok       ok       403
POST   admin:penalties_repairapplication_add                   login    done     done     403
GET    admin:penalties_repairapplication_change                login    ok       ok       ok
POST   admin:penalties_repairapplication_change                login    403      403      403
GET    admin:penalties_repairapplication_delete                login    403      403      403
POST   admin:penalties_repairapplication_delete                login    403      403      403
GET    admin:penalties_repairapplication_history               login    ok       ok       ok
GET    admin/penalties/repairapplication/<path:object_id>/     login    next     next     next
ACTION penalties.repairapplication:delete_selected             login    refused  refused  refused
ACTION penalties.repairapplication:approve_selected            login    refused  done     refused
ACTION penalties.repairapplication:reject_selected             login    refused  done     refused

# --- policies and measures: supervisors only ----------------------------------------------------
GET    admin:penalties_policy_changelist                       login    ok       ok       ok
GET    admin:penalties_policy_add                              login    403      ok       403
POST   admin:penalties_policy_add                              login    403      done     403
GET    admin:penalties_policy_change                           login    ok       ok       ok
POST   admin:penalties_policy_change                           login    403      403      403
GET    admin:penalties_policy_delete                           login    403      403      403
POST   admin:penalties_policy_delete                           login    403      403      403
GET    admin:penalties_policy_history                          login    ok       ok       ok
GET    admin/penalties/policy/<path:object_id>/                login    next     next     next
ACTION penalties.policy:delete_selected                        login    refused  refused  refused
ACTION penalties.policy:activate_selected                      login    refused  done     refused
GET    admin:penalties_restriction_changelist                  login    ok       ok       ok
GET    admin:penalties_restriction_add                         login    403      ok       403
POST   admin:penalties_restriction_add                         login    403      done     403
GET    admin:penalties_restriction_change                      login    ok       ok       ok
POST   admin:penalties_restriction_change                      login    403      403      403
GET    admin:penalties_restriction_delete                      login    403      403      403
POST   admin:penalties_restriction_delete                      login    403      403      403
GET    admin:penalties_restriction_history                     login    ok       ok       ok
GET    admin/penalties/restriction/<path:object_id>/           login    next     next     next
ACTION penalties.restriction:delete_selected                   login    refused  refused  refused
ACTION penalties.restriction:withdraw_selected                 login    refused  done     refused
ACTION penalties.restriction:lift_selected                     login    refused  done     refused

# --- audit exports: auditors and supervisors; an export is its requester's alone ---------------
GET    audit:index                                             login    403      ok       ok
GET    audit:request                                           login    403      ok       ok
POST   audit:request                                           login    403      done     done
GET    audit:download                                          login    403      ok       ok
GET    audit:download#other                                    login    403      404      404
GET    audit:manifest                                          login    403      ok       ok
GET    audit:manifest#other                                    login    403      404      404

# --- the second sign-in step: a verified session is sent on -----------------------------------
GET    otp-verify                                              login    next     next     next
POST   otp-verify                                              login    next     next     next
GET    otp-setup                                               login    next     next     next
POST   otp-setup                                               login    next     next     next
GET    otp-backup-codes                                        login    ok       ok       ok
POST   otp-backup-codes                                        login    ok       ok       ok

# --- public by design: the entry redirect, the language switch, checkpoint verification ---------
GET    /                                                       next     next     next     next
POST   set_language                                            next     next     next     next
GET    ledger:public-key                                       ok       ok       ok       ok
GET    ledger:checkpoint-latest                                ok       ok       ok       ok
"""

# URL prefixes outside the matrix, and why. Everything else must have a case.
EXEMPT_PREFIXES = {
    "api/": "the platform REST API: API keys and scopes, not staff sessions (tests/api)",
    "healthz": "probe for the load balancer, public by design (tests/ops)",
    "readyz": "probe for the load balancer, public by design (tests/ops)",
    "metrics": "Prometheus scrape: token or address, not staff sessions (tests/ops)",
}

OUTCOMES = {"ok", "next", "login", "403", "404", "405", "done", "refused"}


def _parse(text: str) -> dict[str, tuple[str, ...]]:
    table: dict[str, tuple[str, ...]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        cells = line.split()
        assert len(cells) == 2 + len(ROLES), (
            f"MATRIX line {number}: want method, case and {len(ROLES)} outcomes"
        )
        case_id, outcomes = f"{cells[0]} {cells[1]}", tuple(cells[2:])
        assert case_id not in table, f"MATRIX line {number}: {case_id} twice"
        assert set(outcomes) <= OUTCOMES, f"MATRIX line {number}: unknown outcome in {outcomes}"
        table[case_id] = outcomes
    return table


EXPECTED = _parse(MATRIX)
