"""The controlling owner reference, read one way by every user (webhook.ownerref)."""

from __future__ import annotations

import pytest

from webhook.ownerref import OwnerRef, controller_of

RS = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d7f8", "uid": "u-1", "controller": True}


@pytest.mark.parametrize(
    ("refs", "expected"),
    [
        (None, None),
        ("junk", None),
        ([], None),
        ([RS], OwnerRef("ReplicaSet", "web-5d7f8", "apps/v1", "u-1")),
        ([{**RS, "controller": False}], None),
        ([{**RS, "controller": "true"}], None),  # the JSON boolean only
        ([{k: v for k, v in RS.items() if k != "controller"}], None),
        (["junk", None, RS], OwnerRef("ReplicaSet", "web-5d7f8", "apps/v1", "u-1")),
        ([{**RS, "apiVersion": 1, "uid": None}], OwnerRef("ReplicaSet", "web-5d7f8", "", "")),
        # a reference without kind or name names no object: passed over
        ([{**RS, "kind": ""}, {**RS, "name": "other"}], OwnerRef("ReplicaSet", "other", "apps/v1", "u-1")),
        ([{**RS, "name": None}], None),
        # the first controller reference wins (Kubernetes allows one)
        ([RS, {**RS, "kind": "Job", "name": "j"}], OwnerRef("ReplicaSet", "web-5d7f8", "apps/v1", "u-1")),
        # a reference that is not the controller is never taken
        (
            [{**RS, "controller": False, "name": "a"}, {**RS, "name": "b"}],
            OwnerRef("ReplicaSet", "b", "apps/v1", "u-1"),
        ),
    ],
)
def test_controller_of(refs, expected):
    assert controller_of({"ownerReferences": refs}) == expected
