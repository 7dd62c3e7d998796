"""Schemathesis hooks for Airtruct's API: a serializer for the processor upload's `application/wasm` body (bytes as
they are), which schemathesis has none of."""
import schemathesis


@schemathesis.serializer("application/wasm")
def wasm(ctx, value):
    if isinstance(value, bytes):
        return value
    return str(value).encode()
