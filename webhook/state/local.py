"""State from a YAML file (local development and tests): DynaKube and Namespace documents, and optionally
the objects the cluster caches hold:

- ``Secret`` documents in the DynaKubes' namespace: what ``/validate`` reads (``proxy``) and what the init
  Secrets are generated from; ``ConfigMap`` documents there: trustedCAs;
- ``Secret`` documents named ``dynatrace-dynakube-config`` / ``dynatrace-metadata-enrichment-endpoint`` (any
  namespace): the init Secrets present. With none in the file, every namespace counts as having both; with at
  least one, exactly those listed exist;
- ``ReplicaSet``, ``Job`` and ``ReplicationController`` documents (metadata is enough): the owner cache.

A Secret's ``stringData`` is stored base64-encoded in ``data``, as the API server does. The file is read at
start and again whenever it changes; a file that fails to parse keeps the previous state.
"""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path
from typing import Any

import yaml

from webhook.state import owners
from webhook.state import secrets as secret_cache
from webhook.state.store import DYNAKUBES, NAMESPACES, SECRETS, Store

log = logging.getLogger(__name__)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class StateFileError(ValueError):
    pass


OWNER_KINDS = {kind: resource for resource, (kind, _) in owners.RESOURCES.items()}
INIT_RESOURCE = {name: resource for resource, name in secret_cache.INIT_RESOURCES.items()}


def _load(text: str) -> list[Any]:
    try:
        # libyaml's C loader when the wheel has it: ten times faster on large state files
        return [d for d in yaml.load_all(text, Loader=_LOADER) if d is not None]
    except yaml.YAMLError as err:
        raise StateFileError(f"not valid YAML: {err}") from None


def _meta(doc: dict[str, Any]) -> dict[str, Any]:
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        meta = doc["metadata"] = {}
    return meta


def _secret(doc: dict[str, Any]) -> dict[str, Any]:
    data = dict(doc.get("data") or {})
    for key, value in (doc.get("stringData") or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    return {**doc, "data": data}


def parse_documents(text: str, namespace: str) -> dict[str, list[dict[str, Any]]]:
    """Sort the documents by the Store resource they feed (DynaKubes, Secrets and ConfigMaps only in
    ``namespace``); a kind the webhook does not read is an error."""
    found: dict[str, list[dict[str, Any]]] = {DYNAKUBES: [], NAMESPACES: [], SECRETS: []}
    _collect(_load(text), namespace, found)
    return found


def parse(text: str, namespace: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(DynaKubes in ``namespace``, Namespaces) of a state file."""
    found = parse_documents(text, namespace)
    return found[DYNAKUBES], found[NAMESPACES]


def _collect(documents: list[Any], namespace: str, found: dict[str, list[dict[str, Any]]]) -> None:
    for i, doc in enumerate(documents):
        kind = doc.get("kind") if isinstance(doc, dict) else None
        if kind == "List":
            items = doc.get("items")
            _collect(items if isinstance(items, list) else [], namespace, found)
        elif kind in OWNER_KINDS and isinstance(doc, dict):
            found.setdefault(OWNER_KINDS[kind], []).append(doc)
        elif kind == "Secret" and isinstance(doc, dict) and _meta(doc).get("name") in INIT_RESOURCE:
            found.setdefault(INIT_RESOURCE[_meta(doc)["name"]], []).append(_secret(doc))
        elif kind in ("DynaKube", "Secret", "ConfigMap") and isinstance(doc, dict):
            meta = _meta(doc)
            meta.setdefault("namespace", namespace)
            if meta["namespace"] != namespace:
                log.warning("ignoring %s %r outside namespace %r", kind, meta.get("name"), namespace)
            elif kind == "DynaKube":
                found[DYNAKUBES].append(doc)
            elif kind == "Secret":
                secret = _secret(doc)
                found[SECRETS].append(secret)
                found.setdefault(secret_cache.INPUT_SECRETS, []).append(secret)
            else:
                found.setdefault(secret_cache.INPUT_CONFIGMAPS, []).append(doc)
        elif kind == "Namespace":
            found[NAMESPACES].append(doc)
        else:
            raise StateFileError(
                f"document {i + 1} has kind {kind!r}; expected DynaKube, Namespace, Secret, ConfigMap, "
                "ReplicaSet, Job or ReplicationController"
            )


class LocalState:
    """Feeds a Store from a file; ``poll()`` reloads it when its modification time or size changed."""

    def __init__(self, path: str | os.PathLike[str], store: Store) -> None:
        self.path = Path(path)
        self.store = store
        self.store.source = f"file:{self.path}"
        self._stamp: tuple[float, int] | None = None
        self.errors = 0

    def load(self) -> bool:
        try:
            stat = self.path.stat()
            found = parse_documents(self.path.read_text(), self.store.namespace)
        except (OSError, StateFileError) as err:
            self.errors += 1
            log.error("state file %s not loaded, keeping the previous state: %s", self.path, err)
            return False
        self._stamp = (stat.st_mtime, stat.st_size)
        # listing any init Secret switches from "present everywhere" to "exactly those listed"
        self.store.init_secret_cache.tracked = any(r in found for r in secret_cache.INIT_RESOURCES)
        for resource in (*self.store.resources, *self.store.parts()):
            # kinds and caches a state file does not describe are known to be empty
            self.store.replace(resource, found.get(resource, []))
        log.info(
            "state loaded from %s: %d DynaKube(s), %d namespace(s), %d secret(s)",
            self.path,
            len(found[DYNAKUBES]),
            len(found[NAMESPACES]),
            len(found[SECRETS]),
        )
        return True

    def poll(self) -> bool:
        """Reload when the file changed; True when a reload happened."""
        try:
            stat = self.path.stat()
        except OSError:
            return False
        if (stat.st_mtime, stat.st_size) == self._stamp:
            return False
        return self.load()
