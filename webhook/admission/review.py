"""AdmissionReview decoding and answers, for ``admission.k8s.io/v1`` and ``v1beta1``.

Two error channels, as kube-apiserver expects them:
- a body that is not a usable AdmissionReview is an HTTP error (400, or 413 when too large), raised as
  ``ReviewError`` with a short reason; kube-apiserver then applies the webhook's failurePolicy;
- every decodable review gets HTTP 200 and an AdmissionReview in the version it was sent in, echoing the
  request uid, whether the operation is allowed, patched or denied.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from webhook.mutation.patch import Op

API_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
MAX_BODY_BYTES = 7 * 1024 * 1024  # kube-apiserver's own limit for admission requests and controller-runtime's


class ReviewError(Exception):
    """A request that cannot be answered with an AdmissionReview: HTTP ``status`` with ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason

    def body(self) -> bytes:
        return orjson.dumps({"error": self.reason, "code": self.status})


@dataclass(frozen=True)
class Review:
    api_version: str
    uid: str
    request: Mapping[str, Any]

    @property
    def operation(self) -> str:
        value = self.request.get("operation")
        return value if isinstance(value, str) else ""

    @property
    def namespace(self) -> str:
        value = self.request.get("namespace")
        return value if isinstance(value, str) else ""

    @property
    def object(self) -> Any:
        return self.request.get("object")

    @property
    def old_object(self) -> Any:
        return self.request.get("oldObject")

    @property
    def dry_run(self) -> bool:
        return self.request.get("dryRun") is True


_MANAGED_FIELDS = b'"managedFields":['
_METADATA_END = b']},"spec":'
_OLD_OBJECT = b'"oldObject":'


def without_managed_fields(body: bytes) -> bytes | None:
    r"""``body`` with the objects' ``"managedFields":[...]`` members cut out, or None when there is none or the
    cut cannot be made with certainty (the caller then parses the whole body).

    managedFields is half of a typical pod's JSON as kube-apiserver sends it, and no decision reads it.
    kube-apiserver writes an object's metadata in the order of its Go type, managedFields last, and the
    object's spec right after it. So the cut is made where the first ``]`` after the array's ``[`` is followed
    by ``},"spec":``: that ``]`` is outside any string (inside one, the quote after it would end the string
    there, which valid JSON does not allow), managedFields entries hold strings and objects only (no array of
    their own to close), so it closes managedFields, and the ``}`` after it closes the metadata: nothing else
    is cut. A ``]`` inside a string before the array's end, or managedFields anywhere but last, leaves the
    body to the full parse. The member must start a key (after ``{`` or ``,``).
    """
    start = body.find(_MANAGED_FIELDS)
    if start < 0:
        return None
    # an UPDATE's old object comes after the object (the order of AdmissionRequest): only from there on can
    # there be a second member; a CREATE's "oldObject":null is near the end, found from there
    old = body.rfind(_OLD_OBJECT)
    if old >= 0 and body[old + len(_OLD_OBJECT) : old + len(_OLD_OBJECT) + 1] != b"{":
        old = -1  # "oldObject":null
    out = []
    done = 0
    while start >= 0:
        comma = body[start - 1 : start]
        end = body.find(b"]", start + len(_MANAGED_FIELDS))
        if comma not in (b"{", b",") or end < 0 or not body.startswith(_METADATA_END, end):
            return None
        # the member, and the comma before it; metadata's closing brace stays
        out.append(body[done : start - 1] if comma == b"," else body[done:start])
        done = end + 1
        start = body.find(_MANAGED_FIELDS, old) if old > done else -1
    out.append(body[done:])
    return b"".join(out)


def decode(body: bytes, *, lean: bool = False) -> Review:
    """Decode a request body into a Review, or raise ReviewError(400) saying what is wrong.

    ``lean``: the objects' ``metadata.managedFields`` are not parsed (``without_managed_fields``); for
    webhooks whose decisions never read them."""
    if not body:
        raise ReviewError(400, "request body is empty")
    document: Any = None
    if lean and (cut := without_managed_fields(body)) is not None:
        try:
            document = orjson.loads(cut)
        except orjson.JSONDecodeError:
            document = None  # the full parse decides, and says what is wrong
    if document is None:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as err:
            raise ReviewError(400, f"request body is not valid JSON: {err}") from None
    if not isinstance(document, dict):
        raise ReviewError(400, "request body is not a JSON object")
    kind = document.get("kind")
    if kind != "AdmissionReview":
        raise ReviewError(400, f"kind is {kind!r}, expected 'AdmissionReview'")
    api_version = document.get("apiVersion")
    if api_version not in API_VERSIONS:
        raise ReviewError(400, f"apiVersion {api_version!r} is not one of {', '.join(API_VERSIONS)}")
    request = document.get("request")
    if not isinstance(request, dict):
        raise ReviewError(400, "AdmissionReview has no request")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ReviewError(400, "AdmissionReview request has no uid")
    return Review(api_version, uid, request)


@dataclass
class Answer:
    """What a handler decides; ``encode`` turns it into the AdmissionReview response."""

    allowed: bool = True
    ops: Sequence[Op] = ()
    message: str = ""
    code: int = 200
    warnings: Sequence[str] = field(default_factory=list)
    # for logs and metrics only, never sent
    outcome: str = "allowed"
    reasons: Sequence[str] = ()
    target: str = ""
    event: str = ""  # the upstream Event the decision calls for (recorded off the admission path)


def allowed(message: str = "", **kw: Any) -> Answer:
    return Answer(True, message=message, **kw)


def patched(ops: Sequence[Op], message: str = "", **kw: Any) -> Answer:
    return Answer(True, ops=ops, message=message, **kw)


def denied(message: str, code: int = 403, **kw: Any) -> Answer:
    return Answer(False, message=message, code=code, outcome="denied", **kw)


def encode(review: Review, answer: Answer) -> bytes:
    response: dict[str, Any] = {"uid": review.uid, "allowed": answer.allowed}
    if answer.ops:
        response["patchType"] = "JSONPatch"
        # base64 is plain ASCII: written into the answer as it is, not decoded and escaped again
        response["patch"] = orjson.Fragment(b'"' + base64.b64encode(orjson.dumps(list(answer.ops))) + b'"')
    if answer.message or not answer.allowed:
        response["status"] = {"code": answer.code, "message": answer.message}
        if not answer.allowed:
            response["status"]["status"] = "Failure"
            response["status"]["reason"] = "BadRequest" if answer.code == 400 else "Forbidden"
    if answer.warnings:
        response["warnings"] = list(answer.warnings)
    return orjson.dumps({"apiVersion": review.api_version, "kind": "AdmissionReview", "response": response})
