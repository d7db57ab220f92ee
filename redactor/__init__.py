"""redactor: a redaction proxy that swaps card numbers and US SSNs for vault tokens."""

__version__ = "0.1.0"
