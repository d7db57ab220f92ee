"""The backfill side: redaction of what is already stored (exports, mailboxes, helpdesk APIs).

It uses the cores as the proxy does (`bodies/`, `detection/`, `redaction/`, the vault and the
audit trail), so a value stored last year becomes the token a new message with it gets. The
composition root (`cli.py`) loads the configuration and hands it down; this side never reads
settings or the environment itself.
"""
