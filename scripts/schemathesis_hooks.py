"""Schemathesis hooks for scripts/schemathesis.sh.

`POST /api/v1/ledger/import` takes NDJSON (`application/x-ndjson`), a media type Schemathesis
has no serializer for: its body is described as a string (the lines), which goes on the wire
as UTF-8 text, as the hub reads it.
"""

import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    # Anything else the generator makes (a negative test) goes as JSON text.
    return json.dumps(value).encode("utf-8")
