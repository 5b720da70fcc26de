"""Sign-in guard: lockout (django-axes), the security headers, and the security audit trail
(sign-ins, failed sign-ins, lockouts, sign-outs and admin log entries in the ledger)."""
