"""Command-line tooling for the webhook's certificates: generate, show, verify (``python -m certs --help``)."""
