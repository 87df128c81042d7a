"""The baseline: the webhook's own process, listeners, uvicorn settings and TLS, with a trivial admission app.

``python -m bench.baseline <dynatrace-webhook arguments>`` runs ``webhook.cli.main`` with the admission app's
endpoints replaced by one that reads the body, does not parse it, and answers a fixed AdmissionReview. The
app around them (FastAPI, its router and middleware) stays as served. Nothing is added to the production
routes: the replacement only exists in this process.

Three kinds (environment ``BENCH_BASELINE``): ``raw`` (default), an ASGI callable in place of each admission
endpoint, the cheapest answer the app can give; ``route``, a plain FastAPI path operation
(``await request.body()``, return a ``Response``): what a FastAPI application answering fixed bytes costs;
``parse``, the same path operation parsing the review as the webhook does (``review.decode``) and answering
the file ``BENCH_ANSWER`` with the review's uid: the least a handler that reads the pod costs, without the
decision, its encoding, the log line and the metrics.

And two variants for ``bench.create``, chosen by environment variables:

- ``BENCH_ANSWER=<file>`` and ``BENCH_REINVOKED_ANSWER=<file>``: the answer is one of those files (an
  AdmissionReview answer with ``Template.MARK`` where the uid goes) with the request's uid spliced in
  (kube-apiserver rejects an answer whose uid differs): the second when the pod already carries
  ``INJECTED_MARK`` (a reinvocation, after the built-in admission plugins changed the injected pod). The
  body is searched for the uid and the mark, not parsed (``SplicedAnswer``);
- also ``BENCH_UPSTREAM_KUBECONFIG=<file>`` and ``BENCH_DYNAKUBE_NAMESPACE=<namespace>``: before answering,
  the requests upstream's webhook makes per pod (``bench.upstream.UpstreamStyle``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request, Response

from bench.reviews import BASELINE_ANSWER

HEADERS = [(b"content-type", b"application/json")]
# the first "uid" of an AdmissionReview is the request's: Go writes AdmissionRequest.UID first
_UID = re.compile(rb'"uid"\s*:\s*"([^"\\]*)"')
INJECTED_MARK = b'"oneagent.dynatrace.com/injected":"true"'


async def read_body(receive: Any) -> bytes:
    parts = []
    more = True
    while more:
        message = await receive()
        parts.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(parts)


def uid_of(body: bytes) -> bytes:
    """The request uid of an AdmissionReview, found without parsing the body."""
    match = _UID.search(body)
    if match is None:
        raise ValueError("no uid in the AdmissionReview")
    return match.group(1)


@dataclass(frozen=True)
class Template:
    """A fixed answer with one place for the uid."""

    prefix: bytes
    suffix: bytes

    MARK = b"@@BENCH-UID@@"

    @classmethod
    def parse(cls, text: bytes) -> Template:
        if text.count(cls.MARK) != 1:
            raise ValueError(f"an answer template holds {cls.MARK!r} exactly once")
        prefix, suffix = text.split(cls.MARK)
        return cls(prefix, suffix)

    @classmethod
    def of_answer(cls, answer: bytes, uid: bytes) -> bytes:
        """The template text of ``answer``, which was given for a request with ``uid``."""
        if answer.count(uid) != 1:
            raise ValueError("the answer names its request's uid exactly once")
        return answer.replace(uid, cls.MARK)

    def answer(self, uid: bytes) -> bytes:
        return self.prefix + uid + self.suffix


class FixedAnswer:
    """Reads the whole body (as the real endpoint does), answers the same bytes every time."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": BASELINE_ANSWER})


async def fixed_route(request: Request) -> Response:
    """A plain FastAPI path operation answering the fixed AdmissionReview."""
    await request.body()
    return Response(BASELINE_ANSWER, media_type="application/json")


def answer_template(port: int, body: bytes, ca: Path) -> bytes:
    """The webhook's answer (listening on ``port``, its CA ``ca``) to the AdmissionReview ``body``, as a
    ``Template`` text: the request's uid marked."""
    import ssl

    import httpx
    import orjson

    response = httpx.post(
        f"https://127.0.0.1:{port}/inject?timeout=10s",
        content=body,
        headers={"Content-Type": "application/json"},
        verify=ssl.create_default_context(cafile=str(ca)),
    )
    response.raise_for_status()
    return Template.of_answer(response.content, orjson.loads(body)["request"]["uid"].encode())


def parse_route(template: Template) -> Callable[[Request], Any]:
    """A FastAPI path operation that parses the review and answers ``template`` with its uid."""
    from webhook.admission.review import decode

    async def route(request: Request) -> Response:
        review = decode(await request.body(), lean=True)
        return Response(template.answer(review.uid.encode()), media_type="application/json")

    return route


@dataclass(frozen=True)
class Answers:
    """The fixed answers to a pod's first admission and to its reinvocation."""

    first: Template
    reinvoked: Template

    def answer(self, body: bytes) -> bytes:
        template = self.reinvoked if INJECTED_MARK in body else self.first
        return template.answer(uid_of(body))

    @classmethod
    def load(cls, first: Path, reinvoked: Path) -> Answers:
        return cls(Template.parse(first.read_bytes()), Template.parse(reinvoked.read_bytes()))


class SplicedAnswer:
    """Reads the whole body, answers the template with the body's uid."""

    def __init__(self, answers: Answers) -> None:
        self.answers = answers

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        answer = self.answers.answer(await read_body(receive))
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": answer})


def fixed_answers(build: Any, endpoint: Callable[[], Any] = FixedAnswer, kind: str = "raw") -> Any:
    """``build`` (``admission_app``) with every admission endpoint answering ``endpoint()`` in the endpoint's
    place (``raw``), or (``route``, ``parse``) the endpoint's route replaced by a FastAPI path operation
    answering the fixed AdmissionReview (``parse``: after parsing the review, with its uid)."""
    operation: Callable[..., Any] = fixed_route
    if kind == "parse":
        operation = parse_route(Template.parse(Path(os.environ["BENCH_ANSWER"]).read_bytes()))
    from starlette import routing

    from webhook.admission.app import Endpoint

    def admission_app(*args: Any, **kw: Any) -> Any:
        app = build(*args, **kw)
        for route in list(app.router.routes):
            if isinstance(route, routing.Route) and isinstance(route.endpoint, Endpoint):
                if kind in ("route", "parse"):
                    app.router.routes.remove(route)
                    app.add_api_route(route.path, operation, methods=["POST"])
                else:
                    route.app = endpoint()
        return app

    return admission_app


def endpoint_from_environment() -> Callable[[], Any]:
    answer = os.environ.get("BENCH_ANSWER")
    if not answer:
        return FixedAnswer
    answers = Answers.load(Path(answer), Path(os.environ["BENCH_REINVOKED_ANSWER"]))
    kubeconfig = os.environ.get("BENCH_UPSTREAM_KUBECONFIG")
    if not kubeconfig:
        spliced = SplicedAnswer(answers)
        return lambda: spliced
    from bench.upstream import UpstreamStyle

    upstream = UpstreamStyle(answers, Path(kubeconfig), os.environ["BENCH_DYNAKUBE_NAMESPACE"])
    return lambda: upstream


def main() -> int:
    from webhook.admission import app
    from webhook.cli import main as webhook_main

    kind = os.environ.get("BENCH_BASELINE", "raw")
    endpoint = FixedAnswer if kind == "parse" else endpoint_from_environment()
    app.admission_app = fixed_answers(app.admission_app, endpoint, kind)
    return webhook_main()


if __name__ == "__main__":
    raise SystemExit(main())
