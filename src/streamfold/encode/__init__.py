"""Encoders: streamfold's events back to any streaming wire format.

The mirror of the dialects: an encoder takes the events a ``StreamParser``
gives, of any dialect, and writes them in a target's own format, sans-IO
(``encode(event) -> bytes``, ``close() -> bytes``). One module per target;
what each target cannot carry is in ``docs/encode.md``.
"""
