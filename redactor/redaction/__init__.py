"""The CPU half of redaction, shared by the proxy and the backfill: parse a body, find its
values, and rebuild it with the vault's tokens (scanning.py, rewrite.py).

A core: plain functions of their inputs, no I/O. The ingress pipeline and the backfill each
decide when the vault is called and what is audited; what a body becomes is decided here,
once, so a value stored last year gets the same treatment as one arriving now.
"""
