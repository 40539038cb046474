"""The structured-output recordings of the shared corpus, followed as typed values.

Each recording's answer text is fed to ``StructuredParser`` delta by delta, as
the stream delivered it (the deltas of ``text.delta`` events, per choice), for
the answer's type written as a msgspec Struct, a pydantic model and the JSON
Schema pydantic generates for it. The result must be what the library decodes
from the whole text; an answer cut by the token limit must fail as incomplete.
The same recordings then fold through ``output_type=`` on every layer (fold,
the event iterators, the HTTP adapters over the replay server, the client),
sync and async, to the same validated outputs.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import httpx
import msgspec
import pydantic
import pytest

import streamfold
from streamfold import StreamParser
from streamfold.adapters.client import NO_KEY, StreamRequest, astream, build_request, stream
from streamfold.adapters.httpx import AsyncEventStream, EventStream
from streamfold.adapters.server import ReplayServer
from streamfold.events import OutputUpdated, ResponseFinished, TextDelta, TextDone, to_json
from streamfold.result import Result
from streamfold.structured import UNSET, OutputValidationError, StructuredParser

from .corpus import CORPUS, SKIP_REASON, features


class Character(msgspec.Struct):
    name: str
    class_: str = msgspec.field(name="class")
    description: str


class Characters(msgspec.Struct):
    characters: list[Character]


class CharacterP(pydantic.BaseModel):
    name: str
    class_: str = pydantic.Field(alias="class")
    description: str


class CharactersP(pydantic.BaseModel):
    characters: list[CharacterP]


class Conditions(msgspec.Struct):
    temperature: str
    condition: str
    humidity: str
    windSpeed: str  # the answer's own keys
    windDirection: str


class Day(msgspec.Struct):
    day: str
    high: str
    low: str
    condition: str


class Forecast(msgspec.Struct):
    location: str
    weather: Conditions
    forecast: list[Day]


class ConditionsP(pydantic.BaseModel):
    temperature: str
    condition: str
    humidity: str
    wind_speed: str = pydantic.Field(alias="windSpeed")
    wind_direction: str = pydantic.Field(alias="windDirection")


class DayP(pydantic.BaseModel):
    day: str
    high: str
    low: str
    condition: str


class ForecastP(pydantic.BaseModel):
    location: str
    weather: ConditionsP
    forecast: list[DayP]


class Location(msgspec.Struct):
    city: str
    temperature: float
    units: Literal["c", "f"]


class LocationP(pydantic.BaseModel):
    city: str
    temperature: float
    units: Literal["c", "f"]


class Place(msgspec.Struct):
    city: str
    country: str


class PlaceP(pydantic.BaseModel):
    city: str
    country: str


# recording -> (msgspec type, pydantic model); every one also as pydantic's JSON Schema.
TYPES: dict[str, tuple[Any, type[pydantic.BaseModel]]] = {
    "anthropic__anthropic__json-output-format.sse": (Characters, CharactersP),
    "openai__chat__json-object-mode.sse": (Forecast, ForecastP),
    "openai__chat__structured-output-json-schema.sse": (Location, LocationP),
    "openai__chat__multi-choice-n3-structured.sse": (Location, LocationP),
    "openai__chat__length-finish-max-tokens-1.sse": (Location, LocationP),
    "google__gemini__native-structured-output-grounding.sse": (Place, PlaceP),
}
# Structured-output recordings with no JSON answer to follow: refusals, and the
# Cerebras capture of two completions back to back, whose JSON answer is in the
# second (the fold keeps the first, a tool-call turn: docs/semantics.md).
REFUSALS = {
    "openai__chat__refusal-logprobs.sse",
    "openai__chat__refusal-structured-output.sse",
    "cerebras__chat__structured-output-parallel-tools.sse",
}


def recordings() -> list[Any]:
    if not CORPUS.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_REASON), id="no-corpus")]
    params = []
    for path in sorted(CORPUS.glob("*.sse")):
        if "structured_output" not in features(path) or path.name in REFUSALS:
            continue
        msgspec_type, model = TYPES[path.name]
        for kind, output_type, reference in [
            ("struct", msgspec_type, lambda t, tp=msgspec_type: msgspec.json.decode(t, type=tp)),
            ("pydantic", model, model.model_validate_json),
            ("json-schema", model.model_json_schema(), json.loads),
        ]:
            params.append(pytest.param(path, output_type, reference, id=f"{path.stem}-{kind}"))
    return params


def test_every_structured_output_recording_has_a_type() -> None:
    if not CORPUS.is_dir():
        pytest.skip(SKIP_REASON)
    found = {p.name for p in CORPUS.glob("*.sse") if "structured_output" in features(p)}
    assert found - REFUSALS == set(TYPES)


@pytest.mark.parametrize(("path", "output_type", "reference"), recordings())
def test_recorded_answers_give_validated_values(
    path: Path, output_type: Any, reference: Any
) -> None:
    parsers: dict[int, StructuredParser] = defaultdict(lambda: StructuredParser(output_type))
    done: dict[int, TextDone] = {}
    finish: dict[int, str | None] = {}
    for event in streamfold.iter_events(path.read_bytes()):
        if isinstance(event, TextDelta):
            parsers[event.choice].feed(event.delta)
            assert parsers[event.choice].partial is not None
        elif isinstance(event, TextDone):
            done[event.choice] = event
        elif isinstance(event, ResponseFinished):
            finish[event.choice] = event.finish_reason
    assert parsers and set(parsers) == set(done)
    for choice, parser in parsers.items():
        # What the fold says (output_type=, below): ended properly, not cut by the token limit.
        complete = done[choice].complete and finish[choice] != "length"
        if not complete:
            with pytest.raises(OutputValidationError) as caught:
                parser.close(complete=False)
            assert caught.value.kind == "incomplete"
            assert caught.value.text == done[choice].text
            continue
        assert parser.close(complete=True) == reference(done[choice].text)


# -- through output_type=, on every layer ------------------------------------------------------
#
# Each recording, with its types, folds through ``output_type=`` on each layer
# (the sans-IO fold and its async twin, the event iterators, the HTTP adapters
# over the replay server, the client) to the same validated output: what the
# library decodes from the answer, or an "incomplete" error for an answer cut
# by the token limit. The outputs on ``text.done`` agree with the result's.


def _request(path: Path, server: ReplayServer) -> StreamRequest:
    api = path.name.split("__")[1]
    return build_request("Go", model=path.stem, api=api, base_url=server.url, api_key=NO_KEY)


def _check(events: list[Any], result: Result, partial: Any) -> Result:
    done = [e for e in events if isinstance(e, TextDone) and e.choice == 0]
    if done and result.output_error is None:
        assert result.output == done[-1].output
    if partial is not None:  # the partial output at the end is the output
        assert partial is result.output or result.output_error is not None
    assert any(isinstance(e, OutputUpdated) for e in events) or result.output_error is not None
    return result


def _iter_events(path: Path, output_type: Any, server: ReplayServer) -> Result:
    parser = StreamParser(output_type=output_type)
    events = parser.feed(path.read_bytes()) + parser.close()
    assert [to_json(e) for e in events] == [
        to_json(e) for e in streamfold.iter_events(path.read_bytes(), output_type=output_type)
    ]
    return _check(events, parser.final(), parser.partial_output())


def _aiter_events(path: Path, output_type: Any, server: ReplayServer) -> Result:
    async def run() -> list[Any]:
        return [
            e async for e in streamfold.aiter_events(path.read_bytes(), output_type=output_type)
        ]

    events = asyncio.run(run())
    return _check(events, streamfold.fold(path.read_bytes(), output_type=output_type), None)


def _event_stream(path: Path, output_type: Any, server: ReplayServer) -> Result:
    request = _request(path, server)
    with (
        httpx.Client() as client,
        client.stream("POST", request.url, json=request.body, headers=request.headers) as r,
    ):
        live = EventStream(r, output_type=output_type)
        events = list(live)
        return _check(events, live.final(), live.partial_output())


def _async_event_stream(path: Path, output_type: Any, server: ReplayServer) -> Result:
    request = _request(path, server)

    async def run() -> Result:
        async with (
            httpx.AsyncClient() as client,
            client.stream("POST", request.url, json=request.body, headers=request.headers) as r,
        ):
            live = AsyncEventStream(r, output_type=output_type)
            events = [e async for e in live]
            return _check(events, await live.final(), live.partial_output())

    return asyncio.run(run())


def _client(path: Path, output_type: Any, server: ReplayServer) -> Result:
    request = _request(path, server)
    with stream(
        "Go",
        model=path.stem,
        api=request.api,
        base_url=server.url,
        api_key=NO_KEY,
        output_type=output_type,
    ) as live:
        events = list(live)
        return _check(events, live.final(), live.partial_output())


def _async_client(path: Path, output_type: Any, server: ReplayServer) -> Result:
    request = _request(path, server)

    async def run() -> Result:
        async with astream(
            "Go",
            model=path.stem,
            api=request.api,
            base_url=server.url,
            api_key=NO_KEY,
            output_type=output_type,
        ) as live:
            events = [e async for e in live]
            return _check(events, await live.final(), live.partial_output())

    return asyncio.run(run())


LAYERS = [
    pytest.param(lambda p, t, s: streamfold.fold(p.read_bytes(), output_type=t), id="fold"),
    pytest.param(
        lambda p, t, s: asyncio.run(streamfold.afold(p.read_bytes(), output_type=t)), id="afold"
    ),
    pytest.param(_iter_events, id="iter_events"),
    pytest.param(_aiter_events, id="aiter_events"),
    pytest.param(_event_stream, id="EventStream"),
    pytest.param(_async_event_stream, id="AsyncEventStream"),
    pytest.param(_client, id="stream"),
    pytest.param(_async_client, id="astream"),
]


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize(("path", "output_type", "reference"), recordings())
def test_recordings_fold_through_output_type_on_every_layer(
    replay_server: ReplayServer,
    path: Path,
    output_type: Any,
    reference: Any,
    layer: Callable[[Path, Any, ReplayServer], Result],
) -> None:
    with replay_server.context(recordings=path):
        result = layer(path, output_type, replay_server)
    if result.finish_reason == "length":
        assert result.output is UNSET
        assert result.output_error is not None and result.output_error.kind == "incomplete"
        assert result.output_error.text == result.text
        return
    assert result.output_error is None
    assert result.output == reference(result.text)
    msgspec.json.encode(result)  # a user type in the result never breaks its JSON
