"""Talks to an Airtruct server's /mcp endpoint with the official MCP Python SDK, as an agent would.

Usage: client.py URL TOKEN TOOL ARGUMENTS_JSON BAD_ARGUMENTS_JSON
Prints one JSON object: the tools listed, the result of a call with ARGUMENTS, the result of a call with
BAD_ARGUMENTS, and what happened to a client that sent no token (the statuses it was answered with).
"""

import asyncio
import json
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


def result(r):
    return {
        "is_error": bool(r.is_error),
        "text": [c.text for c in r.content if getattr(c, "type", None) == "text"],
        "structured": r.structured_content,
    }


async def main(url, token, tool, arguments, bad_arguments):
    out = {}
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            listed = await client.list_tools()
            out["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.input_schema}
                for t in listed.tools
            ]
            out["result"] = result(await client.call_tool(tool, arguments))
            out["bad"] = result(await client.call_tool(tool, bad_arguments))
    # Without a token: what the server answered, as the SDK's HTTP client saw it.
    statuses = []

    async def record(response):
        statuses.append(response.status_code)

    try:
        async with httpx2.AsyncClient(event_hooks={"response": [record]}, timeout=60) as http:
            async with Client(streamable_http_client(url, http_client=http)) as client:
                await client.list_tools()
        out["no_token"] = "listed"
    except BaseException as e:  # the SDK raises an exception group from its task group
        out["no_token"] = f"{type(e).__name__}: {e!r}"
    out["no_token_statuses"] = statuses
    print(json.dumps(out))


if __name__ == "__main__":
    url, token, tool, arguments, bad = sys.argv[1:6]
    asyncio.run(main(url, token, tool, json.loads(arguments), json.loads(bad)))
