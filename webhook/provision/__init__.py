"""The one write the admission path may cause: an init Secret a pod needs, created on first need.

Everything else an admission answers from the cache. This package is where that single write lives; the edge
reaches it only through the callable the server wires in (``webhook.admission`` imports nothing from here).
"""
