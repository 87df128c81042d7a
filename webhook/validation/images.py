"""Custom images (``image.go``): each parses as an image reference (go-containerregistry ``name.ParseReference``
with its defaults) and does not point at the Dynatrace environment of ``spec.apiUrl``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from webhook.tolerant import as_map, as_str
from webhook.validation import gourl, hub
from webhook.validation.base import Context, DynaKube

TENANT_IMAGE = "Custom %s image must not reference the Dynatrace Environment directly."
UNPARSABLE_IMAGE = "Custom %s image can't be parsed, make sure it's a valid image reference."

DEFAULT_REGISTRY = "index.docker.io"
_TAG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
_REPO_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-./")
_SHA256 = re.compile(r"[a-f0-9]{64}")


class BadReference(ValueError):
    pass


@dataclass(frozen=True)
class Reference:
    registry: str  # "" when none was given (Docker Hub)
    repository: str
    tag: str = ""
    digest: str = ""

    @property
    def registry_name(self) -> str:
        if not self.registry or self.registry == "docker.io":
            return DEFAULT_REGISTRY
        return self.registry

    @property
    def name(self) -> str:
        """``Reference.Name()``: the normalised reference (registry, ``library/``, tag ``latest``)."""
        repository = self.repository
        if "/" not in repository and self.registry_name == DEFAULT_REGISTRY:
            repository = "library/" + repository
        base = f"{self.registry_name}/{repository}"
        return f"{base}@{self.digest}" if self.digest else f"{base}:{self.tag or 'latest'}"


def _check(element: str, allowed: frozenset[str], low: int, high: int) -> None:
    if not low <= len(element) <= high or not set(element) <= allowed:
        raise BadReference(element)


def _repository(name: str) -> tuple[str, str]:
    if not name:
        raise BadReference("a repository name must be specified")
    registry, repository = "", name
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first):
        registry, repository = first, rest
    _check(repository, _REPO_CHARS, 2, 255)
    url = gourl.try_parse("//" + registry)
    if url is None or url.host != registry:
        raise BadReference(f"registries must be valid RFC 3986 URI authorities: {registry}")
    return registry, repository


def _tag(name: str) -> Reference:
    base, tag = name, ""
    parts = name.split(":")
    if len(parts) > 1 and "/" not in parts[-1]:
        base, tag = ":".join(parts[:-1]), parts[-1]
        if not tag:
            raise BadReference("missing tag")
        _check(tag, _TAG_CHARS, 1, 128)
    return Reference(*_repository(base), tag=tag)


def _digest(name: str) -> Reference:
    parts = name.split("@")
    if len(parts) != 2 or not parts[1].startswith("sha256:"):
        raise BadReference(name)
    if not _SHA256.fullmatch(parts[1].removeprefix("sha256:")):
        raise BadReference(name)
    base = parts[0]
    try:
        tagged = _tag(base)
        base = tagged.name.rpartition(":")[0]
    except BadReference:
        pass
    return Reference(*_repository(base), digest=parts[1])


def parse_reference(text: str) -> Reference:
    """``name.ParseReference``: a tag reference, else a digest reference; raises BadReference."""
    try:
        return _tag(text)
    except BadReference:
        return _digest(text)


def _url_host(text: str) -> str:
    url = gourl.try_parse(text)
    return url.host if url is not None else ""


def _image_problem(image: str, tenant_host: str) -> str:
    """ "" or the message template (``%s`` = section) for one custom image."""
    try:
        reference = parse_reference(image)
    except BadReference:
        return UNPARSABLE_IMAGE
    url = gourl.try_parse(reference.name)
    # Upstream dereferences a nil URL here (a registry IP:port such as 10.0.0.5:5000) and answers 500; the
    # check means "is this the environment's host", so compare the registry itself instead.
    host = url.host if url is not None else reference.registry_name
    return TENANT_IMAGE if host == tenant_host else ""


def tenant_image(dk: DynaKube, ctx: Context) -> str | None:
    tenant_host = _url_host(hub.api_url(dk))
    sections = (
        ("ActiveGate", as_str(as_map(hub.spec(dk).get("activeGate")).get("image"))),
        ("OneAgent", hub.oneagent_image(dk)),
    )
    messages = []
    for section, image in sections:
        if image:
            problem = _image_problem(image, tenant_host)
            if problem:
                messages.append(problem % section)
    return ";".join(messages) or None
