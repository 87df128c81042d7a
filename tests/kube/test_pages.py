"""webhook.kube.api.pages: one paginator for every paginated list (the Reflector, the reinjection scan)."""

from __future__ import annotations

import pytest

from tests.support.fakeapi import FakeApi
from webhook.kube.api import ApiError, ContinueExpired, Stopped, list_items, pages

NAMESPACES = "/api/v1/namespaces"


class Script:
    """A fetch that serves ``items`` in pages of ``size``; ``fail`` maps a call number (1-based) to an error."""

    def __init__(self, items: list[int], size: int, fail: dict[int, ApiError] | None = None) -> None:
        self.items, self.size, self.fail = items, size, fail or {}
        self.calls: list[str] = []

    def __call__(self, token: str):
        self.calls.append(token)
        error = self.fail.get(len(self.calls))
        if error is not None:
            raise error
        start = int(token or 0)
        end = start + self.size
        following = str(end) if end < len(self.items) else ""
        return [{"n": n} for n in self.items[start:end]], "rv7", following


def numbers(page) -> list[int]:
    return [item["n"] for item in page.items]


def test_pages_come_in_order_each_fetched_when_asked_for():
    fetch = Script(list(range(5)), 2)
    iterator = pages(fetch)
    assert fetch.calls == []
    first = next(iterator)
    assert (numbers(first), first.resource_version, first.last, first.restarted) == (
        [0, 1],
        "rv7",
        False,
        False,
    )
    assert fetch.calls == [""]
    rest = list(iterator)
    assert [numbers(p) for p in rest] == [[2, 3], [4]] and [p.last for p in rest] == [False, True]
    assert fetch.calls == ["", "2", "4"]


def test_an_empty_list_is_one_last_page():
    assert [(numbers(p), p.last) for p in pages(Script([], 2))] == [([], True)]


def test_an_expired_continue_token_starts_the_list_again_and_says_so():
    fetch = Script(list(range(5)), 2, fail={3: ApiError(410, "Expired")})
    got = [(numbers(p), p.restarted) for p in pages(fetch, restarts=1)]
    assert got == [([0, 1], False), ([2, 3], False), ([0, 1], True), ([2, 3], False), ([4], False)]
    assert fetch.calls == ["", "2", "4", "", "2", "4"]


def test_one_expiry_more_than_allowed_raises_continue_expired_a_410():
    fetch = Script(list(range(5)), 2, fail={2: ApiError(410), 4: ApiError(410)})
    with pytest.raises(ContinueExpired) as info:
        list(pages(fetch, restarts=1))
    assert info.value.status == 410 and "expired 2 time(s)" in str(info.value)
    with pytest.raises(ContinueExpired):
        list(pages(Script(list(range(5)), 2, fail={2: ApiError(410)})))  # restarts=0: the caller restarts


@pytest.mark.parametrize(
    ("fail", "status"),
    [
        ({1: ApiError(410, "first page")}, 410),  # no continue token: not an expired one
        ({2: ApiError(503, "busy")}, 503),
        ({1: ApiError(403, "forbidden")}, 403),
    ],
)
def test_other_errors_raise_as_they_are(fail, status):
    with pytest.raises(ApiError) as info:
        list(pages(Script(list(range(5)), 2, fail=fail), restarts=3))
    assert type(info.value) is ApiError and info.value.status == status


def test_proceed_is_asked_before_each_continue_request_only():
    answers = iter([True, False])
    asked: list[int] = []

    def proceed() -> bool:
        asked.append(1)
        return next(answers)

    fetch = Script(list(range(7)), 2)
    seen = []
    with pytest.raises(Stopped):
        for page in pages(fetch, proceed=proceed):
            seen.append(numbers(page))
    assert seen == [[0, 1], [2, 3]] and len(asked) == 2 and fetch.calls == ["", "2"]
    assert [numbers(p) for p in pages(Script([1], 2), proceed=lambda: False)] == [[1]]


def test_list_items_reads_a_whole_collection_in_pages_and_starts_again_after_410():
    api = FakeApi()
    for name in ("a", "b", "c", "d", "e"):
        api.seed(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert [i["metadata"]["name"] for i in list_items(api, NAMESPACES, limit=2)] == list("abcde")
    assert [p["limit"] for p in api.pages[-3:]] == [2, 2, 2]

    original = api.list_page

    def compacting(path, **kw):
        result = original(path, **kw)
        if len(api.pages) == 3 + 2:  # after the second page of the second list
            api.compact()
        return result

    api.list_page = compacting  # type: ignore[method-assign]
    names = [i["metadata"]["name"] for i in list_items(api, NAMESPACES, limit=2)]
    assert names == list("abcde")  # no page twice, none missing
    assert [p["continue"] != "" for p in api.pages[3:]] == [False, True, True, False, True, True]
