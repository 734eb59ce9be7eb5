"""What one harness session shares between its stand-ins: the event queue with its virtual clock, the recorded
message boxes, the scripted answers of dialogs, the in-memory settings and the errors raised inside slots.

Real Qt keeps this state in the application object and the event loop; the stand-ins are plain Python objects, so
they find it here. Exactly one Runtime is active while a ``slicer_session`` runs; outside a session the stand-ins
refuse to work (``current()`` raises), so nothing leaks between tests.
"""

from __future__ import annotations

import heapq
import sys
import time
import traceback
from dataclasses import dataclass, field

_ACTIVE: "Runtime | None" = None


def current() -> "Runtime":
    if _ACTIVE is None:
        raise RuntimeError("a Qt/Slicer stand-in was used outside a slicer_session (there is no application)")
    return _ACTIVE


def activate(runtime: "Runtime | None") -> None:
    global _ACTIVE
    _ACTIVE = runtime


@dataclass
class Dialog:
    """A message box or dialog a real session would have shown to the user."""

    kind: str  # "error", "warning", "info", "question", "dialog", "file"
    title: str
    text: str
    detailedText: str = ""
    answer: object = None


@dataclass
class SlotError:
    """An exception raised inside a slot or timer callback; PythonQt prints these and carries on."""

    where: str
    exception: BaseException
    traceback: str


@dataclass
class Runtime:
    confirm_answer: bool = True
    file_dialog_answer: object = None
    dialogs: list = field(default_factory=list)
    progress_dialogs: list = field(default_factory=list)
    opened_urls: list = field(default_factory=list)
    slot_errors: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    app: object = None
    _skipped_ms: float = 0.0
    _started: float = field(default_factory=time.monotonic)
    _timers: list = field(default_factory=list)
    _sequence: int = 0

    # -- event queue -----------------------------------------------------------------------------------------------
    @property
    def clock_ms(self) -> float:
        """Milliseconds since the session started: real time, plus the waits ``run_until`` skipped."""
        return (time.monotonic() - self._started) * 1000.0 + self._skipped_ms

    def schedule(self, delay_ms: float, callback) -> None:
        """Queue ``callback`` to run ``delay_ms`` after the current virtual time (QTimer semantics)."""
        self._sequence += 1
        heapq.heappush(self._timers, (self.clock_ms + max(0.0, float(delay_ms)), self._sequence, callback))

    def run_due(self) -> int:
        """What ``QApplication.processEvents()`` does with timers: run those already due, without waiting (timers
        queued meanwhile wait for the next call)."""
        now, last = self.clock_ms, self._sequence
        ready = sorted(entry for entry in self._timers if entry[0] <= now and entry[1] <= last)
        self._timers = [entry for entry in self._timers if not (entry[0] <= now and entry[1] <= last)]
        heapq.heapify(self._timers)
        for _, _, callback in ready:
            self.call_slot(callback, (), "timer")
        ran = len(ready)
        return ran

    def run_until(self, done=lambda: False, limit: int = 10000) -> int:
        """Run queued timers in due order, advancing the virtual clock, until ``done()`` or the queue is empty.

        The wait for a timer set in the future is skipped, except for a real millisecond or two, so that a polling
        loop (e.g. the non-blocking process handling of ``slicer.util.launchConsoleProcess``) lets its worker thread
        progress.
        """
        ran = 0
        while self._timers and not done():
            due, _, callback = heapq.heappop(self._timers)
            wait = due - self.clock_ms
            if wait > 0:
                time.sleep(min(wait, 2.0) / 1000.0)
                self._skipped_ms += max(0.0, due - self.clock_ms)
            self.call_slot(callback, (), "timer")
            ran += 1
            if ran >= limit:
                raise RuntimeError(f"more than {limit} timer callbacks ran in one go: a callback keeps re-queueing itself")
        return ran

    # -- slots -----------------------------------------------------------------------------------------------------

    def call_slot(self, slot, args, where: str):
        """Call a Python slot the way PythonQt does: an exception is printed and recorded, never propagated."""
        try:
            return slot(*args)
        except Exception as error:  # noqa: BLE001 - PythonQt catches everything a slot raises
            text = traceback.format_exc()
            print(f"[slicer_app] exception in {where}:\n{text}", file=sys.stderr)
            self.slot_errors.append(SlotError(where, error, text))
            return None

    # -- dialogs ---------------------------------------------------------------------------------------------------

    def record(self, dialog: Dialog) -> Dialog:
        self.dialogs.append(dialog)
        return dialog
