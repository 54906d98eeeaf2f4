"""Writing the answer format: the one implementation every answer writer uses.

The gold answer, the solver's traced answers, `/v1/solve`'s completion and the evaluation's baseline
policies all write their schedules here, on both sides of the wire (the service and the trainer import
`shared_schema`, never each other). Reading answers is the service's alone: `/v1/score` can return the
events it read (`ScoreRequest.return_events`), so nothing else parses the format again.

    <think>reasoning</think>
    <schedule>
    <event><name>NAME</name><start>HH:MM</start><end>HH:MM</end></event>
    ...
    </schedule>
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class EventLike(Protocol):
    """Anything with an event's three texts (`Event`, `ScheduledEvent`)."""

    @property
    def name(self) -> str: ...
    @property
    def start(self) -> str: ...
    @property
    def end(self) -> str: ...


def format_event(event: EventLike) -> str:
    """One `<event>` element."""
    return f"<event><name>{event.name}</name><start>{event.start}</start><end>{event.end}</end></event>"


def format_schedule(events: Iterable[EventLike]) -> str:
    """A schedule in the answer format: the `<schedule>` block only, one event per line."""
    return "<schedule>\n" + "\n".join(format_event(e) for e in events) + "\n</schedule>"


def format_answer(reasoning: str, events: Iterable[EventLike]) -> str:
    """A whole answer: the reasoning block, a newline, then the schedule block."""
    return f"<think>{reasoning}</think>\n{format_schedule(events)}"
