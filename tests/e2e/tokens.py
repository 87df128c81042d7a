"""The tokens Secret a DynaKube names (``spec.tokens``, default its own name): the init Secrets are generated
from it, and a pod is injected only once its namespace has ``dynatrace-dynakube-config``."""

from __future__ import annotations

import base64
from typing import Any

from tests.e2e.helpers import NAMESPACES, RUN_LABEL

API_TOKEN = "e2e-api-token"


def create_tokens(cleanup: Any, namespace: str, dynakube: str, run: str) -> None:
    """Create the tokens Secret of ``dynakube`` in ``namespace`` (deleted at teardown)."""
    cleanup.create(
        f"{NAMESPACES}/{namespace}/secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": dynakube, "labels": {RUN_LABEL: run}},
            "data": {"apiToken": base64.b64encode(API_TOKEN.encode()).decode()},
        },
    )
