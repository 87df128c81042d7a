"""State from a YAML file (local development and tests): DynaKube and Namespace documents, and optionally
the objects the cluster caches hold:

- ``Secret`` documents named ``dynatrace-dynakube-config`` / ``dynatrace-metadata-enrichment-endpoint``: the
  init Secrets present (per namespace). With none in the file, every namespace counts as having both;
  with at least one, exactly those listed exist;
- other ``Secret`` and ``ConfigMap`` documents in the DynaKubes' namespace: the inputs they are generated from;
- ``ReplicaSet``, ``Job`` and ``ReplicationController`` documents (metadata is enough): the owner cache.

The file is read at start and again whenever it changes; a file that fails to parse keeps the previous state.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import yaml

from webhook.state import owners
from webhook.state import secrets as secret_cache
from webhook.state.store import DYNAKUBES, NAMESPACES, Store

log = logging.getLogger(__name__)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class StateFileError(ValueError):
    pass


OWNER_KINDS = {kind: resource for resource, (kind, _) in owners.RESOURCES.items()}
INIT_RESOURCE = {name: resource for resource, name in secret_cache.INIT_RESOURCES.items()}


def parse(text: str, namespace: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split the documents into (dynakubes in ``namespace``, namespaces); other known kinds are dropped."""
    sections = parse_sections(text, namespace)
    return sections[DYNAKUBES], sections[NAMESPACES]


def _load(text: str) -> list[Any]:
    try:
        # libyaml's C loader when the wheel has it: ten times faster on large state files
        return [d for d in yaml.load_all(text, Loader=_LOADER) if d is not None]
    except yaml.YAMLError as err:
        raise StateFileError(f"not valid YAML: {err}") from None


def _meta(doc: dict[str, Any]) -> dict[str, Any]:
    meta = doc.get("metadata")
    return meta if isinstance(meta, dict) else {}


def parse_sections(text: str, namespace: str) -> dict[str, list[dict[str, Any]]]:
    """Every document by the Store resource it feeds; a kind the webhook does not read is an error."""
    sections: dict[str, list[dict[str, Any]]] = {DYNAKUBES: [], NAMESPACES: []}
    _collect(_load(text), namespace, sections)
    return sections


def _collect(documents: list[Any], namespace: str, sections: dict[str, list[dict[str, Any]]]) -> None:
    dynakubes, namespaces = sections[DYNAKUBES], sections[NAMESPACES]
    for i, doc in enumerate(documents):
        kind = doc.get("kind") if isinstance(doc, dict) else None
        if kind == "List":
            items = doc.get("items")
            _collect(items if isinstance(items, list) else [], namespace, sections)
        elif kind in OWNER_KINDS and isinstance(doc, dict):
            sections.setdefault(OWNER_KINDS[kind], []).append(doc)
        elif kind == "Secret" and isinstance(doc, dict) and _meta(doc).get("name") in INIT_RESOURCE:
            sections.setdefault(INIT_RESOURCE[_meta(doc)["name"]], []).append(doc)
        elif kind in ("Secret", "ConfigMap") and isinstance(doc, dict):
            if _meta(doc).setdefault("namespace", namespace) == namespace:
                resource = secret_cache.INPUT_SECRETS if kind == "Secret" else secret_cache.INPUT_CONFIGMAPS
                sections.setdefault(resource, []).append(doc)
            else:
                log.warning("ignoring %s %r outside namespace %r", kind, _meta(doc).get("name"), namespace)
        elif kind == "DynaKube":
            meta = doc.setdefault("metadata", {})
            meta.setdefault("namespace", namespace)
            if meta["namespace"] == namespace:
                dynakubes.append(doc)
            else:
                log.warning("ignoring DynaKube %r outside namespace %r", meta.get("name"), namespace)
        elif kind == "Namespace":
            namespaces.append(doc)
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
            sections = parse_sections(self.path.read_text(), self.store.namespace)
        except (OSError, StateFileError) as err:
            self.errors += 1
            log.error("state file %s not loaded, keeping the previous state: %s", self.path, err)
            return False
        self._stamp = (stat.st_mtime, stat.st_size)
        dynakubes, namespaces = sections[DYNAKUBES], sections[NAMESPACES]
        self.store.replace(DYNAKUBES, dynakubes)
        self.store.replace(NAMESPACES, namespaces)
        # listing any init Secret switches from "present everywhere" to "exactly those listed"
        self.store.init_secret_cache.tracked = any(r in sections for r in secret_cache.INIT_RESOURCES)
        for resource in (*owners.RESOURCES, *secret_cache.INIT_RESOURCES, *secret_cache.INPUT_RESOURCES):
            self.store.replace(resource, sections.get(resource, []))
        log.info(
            "state loaded from %s: %d DynaKube(s), %d namespace(s)",
            self.path,
            len(dynakubes),
            len(namespaces),
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
