"""JSON Patch (RFC 6902) operations built from the changes a mutation makes.

The request path never diffs whole objects: each mutation says what it changes and this module turns that
into operations. ``jsonpatch.make_patch`` stays in the tests as the oracle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Op = dict[str, Any]
_MISSING = object()


def escape(token: str) -> str:
    """Escape one JSON Pointer reference token (RFC 6901): ``~`` -> ``~0``, ``/`` -> ``~1``."""
    return token.replace("~", "~0").replace("/", "~1")


def pointer(*tokens: str | int) -> str:
    out = ""
    for token in tokens:
        text = token if type(token) is str else str(token)
        out += "/" + (escape(text) if "~" in text or "/" in text else text)
    return out


class Patch:
    """An ordered list of JSON Patch operations against one document.

    Every method looks at the *original* document to decide between adding a missing map or list as a whole
    and adding into an existing one, so the patch applies cleanly to exactly what kube-apiserver sent.
    """

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._document = document
        self.ops: list[Op] = []
        # maps and lists that this patch itself created, with their current value, so that later additions to
        # them become operations on the created value instead of a second "add the whole thing"
        self._created: dict[tuple[str | int, ...], Any] = {}
        # look-ups in the original document (which never changes), by path
        self._found: dict[tuple[str | int, ...], Any] = {}
        self._pointers: dict[tuple[str | int, ...], str] = {}

    def __bool__(self) -> bool:
        return bool(self.ops)

    def _lookup(self, path: Sequence[str | int]) -> Any:
        key = path if type(path) is tuple else tuple(path)
        node: Any = self._created.get(key, _MISSING)
        if node is not _MISSING:
            return node
        node = self._found.get(key, _MISSING)
        if node is not _MISSING:
            return node
        # walk from the deepest prefix already looked up: mutations hit the same container several times
        node = self._found.get(key[:-1], _MISSING)
        if node is _MISSING:
            node, tokens = self._document, key
        else:
            tokens = key[-1:]
        for token in tokens:
            # plain dicts first: the abstract-class check is several times slower
            if (type(node) is dict or isinstance(node, Mapping)) and isinstance(token, str):
                node = node.get(token)
            elif type(node) is list and type(token) is int and 0 <= token < len(node):
                node = node[token]
            else:
                node = None
                break
        self._found[key] = node
        return node

    def _pointer(self, path: Sequence[str | int]) -> str:
        key = path if type(path) is tuple else tuple(path)
        text = self._pointers.get(key)
        if text is None:
            text = self._pointers[key] = pointer(*key)
        return text

    def _ensure(self, path: Sequence[str | int], empty: Any) -> tuple[bool, Any]:
        """Return (existed, container) for the map or list at ``path``.

        A missing container is not added here: the caller adds it whole, with its first value. A container
        that is null or of the wrong type counts as missing (``add`` then replaces it).
        """
        node = self._lookup(path)
        if isinstance(node, type(empty)):
            return True, node
        return False, None

    def set_in_map(self, path: Sequence[str | int], key: str, value: Any) -> None:
        """Set ``key`` to ``value`` in the map at ``path``; nothing when it already holds that value."""
        existed, node = self._ensure(path, {})
        if not existed:
            self._add_missing(path, {key: value})
        elif tuple(path) in self._created:
            node[key] = value
        elif key not in node or node[key] != value:
            self.ops.append({"op": "add", "path": self._pointer(path) + pointer(key), "value": value})

    def remove_from_map(self, path: Sequence[str | int], key: str) -> None:
        existed, node = self._ensure(path, {})
        if existed and key in node:
            self.ops.append({"op": "remove", "path": pointer(*path, key)})

    def append(self, path: Sequence[str | int], value: Any) -> None:
        """Append ``value`` to the list at ``path``, adding the list when it is missing."""
        existed, node = self._ensure(path, [])
        if not existed:
            self._add_missing(path, [value])
        elif tuple(path) in self._created:
            node.append(value)
        else:
            self.ops.append({"op": "add", "path": self._pointer(path) + "/-", "value": value})

    def extend(self, path: Sequence[str | int], values: Sequence[Any]) -> None:
        """``append`` each of ``values`` in order (the same operations), with one look-up of the list."""
        if not values:
            return
        key = path if type(path) is tuple else tuple(path)
        node = self._lookup(key)
        if not isinstance(node, list):
            self._add_missing(key, list(values))
        elif key in self._created:
            node.extend(values)
        else:
            target = self._pointer(key) + "/-"
            self.ops += [{"op": "add", "path": target, "value": value} for value in values]

    def replace(self, path: Sequence[str | int], value: Any) -> None:
        self.ops.append({"op": "replace", "path": pointer(*path), "value": value})

    def _add_missing(self, path: Sequence[str | int], value: Any) -> None:
        # Walk up to the deepest ancestor that is a map, and add the missing part below it as one value.
        for depth in range(len(path) - 1, -1, -1):
            parent = self._lookup(path[:depth])
            if isinstance(parent, Mapping):
                nested = value
                for token in reversed(path[depth + 1 :]):
                    nested = {token: nested}
                self.ops.append({"op": "add", "path": pointer(*path[: depth + 1]), "value": nested})
                # remember every created container: later changes to it edit the value of this one operation
                node = nested
                for i in range(depth + 1, len(path) + 1):
                    self._created[tuple(path[:i])] = node
                    if i < len(path):
                        node = node[path[i]]
                return
            if isinstance(parent, list):
                break
        raise ValueError(f"cannot add {pointer(*path)}: its parent is not an object")
