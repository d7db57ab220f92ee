"""The agent side: JWT -> Principal (`auth.py`, `jwks.py`), "may X see Y" (`policy.py`),
resolve and reveal (`resolve.py`), use without seeing (`outbound.py`), masked forms."""
