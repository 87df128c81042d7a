"""Certificates: generation, the self-managed CA and caBundle manager, the hot-reloaded serving context."""
