"""What an ``/inject`` decision answers (pure): the outcome, reasons, patch operations, the trace of checks
made and the Event the answer calls for. Shared by every contract's gate and build (``pod``,
``bootstrapper``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from webhook.mutation.patch import Op

# outcomes (bounded: they label metrics)
INJECTED = "injected"
REINVOKED = "reinvoked"
SKIPPED = "skipped"

# Events (upstream reasons, section 8 of the contract)
EVENT_INJECT = "Inject"
EVENT_UPDATE_POD = "UpdatePod"
EVENT_MISSING_DYNAKUBE = "MissingDynakube"

Check = tuple[str, bool, str]  # (check, passed, detail): the trace ``explain`` prints


@dataclass
class Result:
    outcome: str
    reasons: tuple[str, ...] = ()
    message: str = ""
    dynakube: str = ""
    ops: list[Op] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    event: str = ""  # the upstream Event this admission calls for ("" = none)
    contract: str = ""  # a later injection contract the pod was decided under ("" = v1.4, or none reached)
    # the builder the ops came from, for a later handler to go on with (the v1.10 contract's OTLP exporter)
    patch: Any = field(default=None, repr=False, compare=False)


class Trace:
    """The checks made so far, and the DynaKube once the namespace names one."""

    __slots__ = ("checks", "dynakube")

    def __init__(self) -> None:
        self.checks: list[Check] = []
        self.dynakube = ""

    def skip(self, check: str, reason: str, message: str, event: str = "") -> Result:
        self.checks.append((check, False, message))
        return Result(SKIPPED, (reason,), message, self.dynakube, checks=self.checks, event=event)
