"""State from a YAML file (local development and tests): DynaKube and Namespace documents.

The file is read at start and again whenever it changes; a file that fails to parse keeps the previous state.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import yaml

from webhook.state.store import DYNAKUBES, NAMESPACES, Store

log = logging.getLogger(__name__)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class StateFileError(ValueError):
    pass


def parse(text: str, namespace: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split the documents into (dynakubes in ``namespace``, namespaces); anything else is an error."""
    dynakubes, namespaces = [], []
    try:
        # libyaml's C loader when the wheel has it: ten times faster on large state files
        documents = [d for d in yaml.load_all(text, Loader=_LOADER) if d is not None]
    except yaml.YAMLError as err:
        raise StateFileError(f"not valid YAML: {err}") from None
    for i, doc in enumerate(documents):
        kind = doc.get("kind") if isinstance(doc, dict) else None
        if kind == "List":
            more_dk, more_ns = parse(yaml.safe_dump_all(doc.get("items") or []), namespace)
            dynakubes += more_dk
            namespaces += more_ns
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
            raise StateFileError(f"document {i + 1} has kind {kind!r}; expected DynaKube or Namespace")
    return dynakubes, namespaces


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
            dynakubes, namespaces = parse(self.path.read_text(), self.store.namespace)
        except (OSError, StateFileError) as err:
            self.errors += 1
            log.error("state file %s not loaded, keeping the previous state: %s", self.path, err)
            return False
        self._stamp = (stat.st_mtime, stat.st_size)
        self.store.replace(DYNAKUBES, dynakubes)
        self.store.replace(NAMESPACES, namespaces)
        for resource in self.store.resources:
            if resource not in (DYNAKUBES, NAMESPACES):
                self.store.replace(resource, [])  # kinds a state file does not describe: known to be empty
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
