"""State from a YAML file (local development and tests): DynaKube, Namespace and Secret documents.

Secrets of the webhook's namespace feed the Secret cache (e.g. a DynaKube's proxy Secret). For the init
secrets only names count: a namespace for which the file lists no Secret is taken to hold both init secrets;
list one to say that only it exists there. The cluster ID is the UID of a ``kube-system`` Namespace document,
as in a cluster.

The file is read at start and again whenever it changes; a file that fails to parse keeps the previous state.
"""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path
from typing import Any

import yaml

from webhook.state.store import DYNAKUBES, NAMESPACES, SECRETS, Store

log = logging.getLogger(__name__)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class StateFileError(ValueError):
    pass


def parse_documents(text: str, namespace: str) -> tuple[dict[str, list[dict[str, Any]]], dict[str, set[str]]]:
    """Sort the documents by resource: DynaKubes and Secrets in ``namespace``, Namespaces; and the Secret
    names per namespace (any namespace). Anything else is an error. A Secret's ``stringData`` is stored
    base64-encoded in ``data``, as the API server does."""
    found: dict[str, list[dict[str, Any]]] = {DYNAKUBES: [], NAMESPACES: [], SECRETS: []}
    secret_names: dict[str, set[str]] = {}
    try:
        # libyaml's C loader when the wheel has it: ten times faster on large state files
        documents = [d for d in yaml.load_all(text, Loader=_LOADER) if d is not None]
    except yaml.YAMLError as err:
        raise StateFileError(f"not valid YAML: {err}") from None
    for i, doc in enumerate(documents):
        kind = doc.get("kind") if isinstance(doc, dict) else None
        if kind == "List":
            more, more_names = parse_documents(yaml.safe_dump_all(doc.get("items") or []), namespace)
            for resource, items in more.items():
                found[resource] += items
            for ns, names in more_names.items():
                secret_names.setdefault(ns, set()).update(names)
        elif kind == "DynaKube":
            meta = doc.setdefault("metadata", {})
            meta.setdefault("namespace", namespace)
            if meta["namespace"] != namespace:
                log.warning("ignoring %s %r outside namespace %r", kind, meta.get("name"), namespace)
            else:
                found[DYNAKUBES].append(doc)
        elif kind == "Secret":
            meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else None
            name = meta.get("name") if meta is not None else None
            if meta is None or not isinstance(name, str) or not name:
                raise StateFileError(f"document {i + 1}: a Secret needs metadata.name")
            secret_ns = meta.setdefault("namespace", namespace)
            if not isinstance(secret_ns, str) or not secret_ns:
                raise StateFileError(f"document {i + 1}: a Secret's metadata.namespace must be a name")
            secret_names.setdefault(secret_ns, set()).add(name)
            if secret_ns == namespace:
                found[SECRETS].append(_secret(doc))
        elif kind == "Namespace":
            found[NAMESPACES].append(doc)
        else:
            raise StateFileError(
                f"document {i + 1} has kind {kind!r}; expected DynaKube, Namespace or Secret"
            )
    return found, secret_names


def _secret(doc: dict[str, Any]) -> dict[str, Any]:
    data = dict(doc.get("data") or {})
    for key, value in (doc.get("stringData") or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    return {**doc, "data": data}


def parse(text: str, namespace: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(DynaKubes in ``namespace``, Namespaces) of a state file."""
    found, _ = parse_documents(text, namespace)
    return found[DYNAKUBES], found[NAMESPACES]


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
            found, secret_names = parse_documents(self.path.read_text(), self.store.namespace)
        except (OSError, StateFileError) as err:
            self.errors += 1
            log.error("state file %s not loaded, keeping the previous state: %s", self.path, err)
            return False
        self._stamp = (stat.st_mtime, stat.st_size)
        for resource in self.store.resources:
            # kinds a state file does not describe are known to be empty
            self.store.replace(resource, found.get(resource, []))
        self.store.set_local_init_secrets(secret_names)
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
