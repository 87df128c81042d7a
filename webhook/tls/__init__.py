"""Certificates: generation, the self-managed CA and caBundle manager, the hot-reloaded serving context, and
the ``dynatrace-webhook certs`` tool (``tool``)."""
