"""The registry: one row per API, its dialect module imported only when used."""

from __future__ import annotations

import subprocess
import sys

import pytest

from streamfold.dialects import APIS, DIALECTS, Dialect, get
from streamfold.dialects.registry import get_api


@pytest.mark.parametrize("api", [pytest.param(api, id=api.id) for api in APIS])
def test_each_row_names_its_dialect_and_its_readers(api: object) -> None:
    from streamfold.dialects.registry import API

    assert isinstance(api, API)
    cls = api.dialect
    assert issubclass(cls, Dialect) and cls.name == api.id
    assert get(api.id) is cls and get(api.name) is cls and DIALECTS[api.id] is cls
    # The error readers and the re-attach position are the dialect module's own
    # functions, reached on first call.
    for reader in (api.unwrap_error, api.error_code, api.error_request_id, api.retry_delay):
        if reader is not None:
            reader({})  # an empty body: no answer, and no error
    if api.reattach is not None:
        from streamfold.fold import Accumulator

        assert api.reattach.position(cls(Accumulator())) is None  # nothing folded yet


def test_dialects_map_lists_every_api_in_detection_order() -> None:
    assert list(DIALECTS) == [api.id for api in APIS]
    assert len(DIALECTS) == len(APIS)
    with pytest.raises(KeyError):
        DIALECTS["nope"]
    assert get_api("chat").id == "openai-chat"


def test_import_loads_no_dialect_module_and_a_stream_loads_its_own() -> None:
    # The registry names classes by module: `import streamfold` costs no
    # dialect module; folding a Chat Completions stream loads what detection
    # tries. Nor does it load the typed-output module until a type is given.
    code = "\n".join(
        [
            "import sys, streamfold",
            "def loaded():",
            "    names = (m.rsplit('.', 1)[1] for m in sys.modules",
            "             if m.startswith('streamfold.dialects.'))",
            "    return ','.join(sorted(set(names) - {'base', 'registry'}))",
            "print(loaded())",
            "streamfold.StreamParser('openai-chat').feed(b'data: {}' + bytes([10, 10]))",
            "print(loaded())",
            "print('streamfold.structured' in sys.modules)",
            "streamfold.StreamParser(output_type=dict)",
            "print('streamfold.structured' in sys.modules)",
        ]
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    before, after, typed_before, typed_after = done.stdout.splitlines()
    assert before == ""
    assert after == "openai_chat"
    assert (typed_before, typed_after) == ("False", "True")
