"""The structured-output recordings of the shared corpus, followed as typed values.

Each recording's answer text is fed to ``StructuredParser`` delta by delta, as
the stream delivered it (the deltas of ``text.delta`` events, per choice), for
the answer's type written as a msgspec Struct, a pydantic model and the JSON
Schema pydantic generates for it. The result must be what the library decodes
from the whole text; an answer cut by the token limit must fail as incomplete.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

import msgspec
import pydantic
import pytest

import streamfold
from streamfold.events import ResponseFinished, TextDelta, TextDone
from streamfold.structured import OutputValidationError, StructuredParser

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
        # What the phase-2 fold will say: ended properly, and not cut by the token limit.
        complete = done[choice].complete and finish[choice] != "length"
        if not complete:
            with pytest.raises(OutputValidationError) as caught:
                parser.close(complete=False)
            assert caught.value.kind == "incomplete"
            assert caught.value.text == done[choice].text
            continue
        assert parser.close(complete=True) == reference(done[choice].text)
