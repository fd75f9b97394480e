"""Mail: what the portal tells people (budget and period warnings, allocation steps).

- ``settings``: ``HPCHubMail``, the site's relay (``c.HPCHubMail.*``).
- ``sender``: ``send_pending`` hands the ledger's queued messages to the relay (the standard
  library's ``smtplib``) and records each attempt; run by the reconciler every pass.
- ``notify``: queue a message for a portal user or a project's leaders without ever failing
  the action that caused it.

Queueing is the ledger's (``hub/ledger/mail_outbox.py``): a message is queued once per key.
"""
