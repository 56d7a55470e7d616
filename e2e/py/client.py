"""A small MCP 2026-07-28 client on the official Python SDK (PyPI `mcp`), for the e2e suite.

Usage: MCP_TOKEN=<access token> python client.py URL 'CALLS'

CALLS is a JSON array run in order on one stateless 2026-07-28 connection (mode pinned, no
initialize; the SDK sends `Mcp-Method` / `Mcp-Name` on every request):
  {"list": true}                              -> tools/list
  {"tool": "read_notes", "arguments": {...}}  -> tools/call
  {"listen": SECONDS}                         -> subscriptions/listen: waits for the ack, then holds
                                                 the stream open for SECONDS; {"held": SECONDS} when
                                                 it is still open then (no event, no loss)
Prints one JSON array with one entry per call: {"result": <the result as the SDK parsed it>} or
{"error": {"code", "message", "data"}} (an MCPError, e.g. the gate's 403 JSON-RPC body), or
{"error": {"type", "message"}} for anything else. Exit status 0 unless CALLS is unusable.

The token comes from the environment, not the command line, so it never shows in a process list.
Response caching is off: every call must reach the gate.
"""

import json
import os
import sys

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

MODE = "2026-07-28"


def dump(value):
    return value.model_dump(mode="json", by_alias=True, exclude_none=True)


async def hold_listen(client, seconds):
    async with client.listen(tools_list_changed=True) as sub:
        events = sub.__aiter__()
        try:
            with anyio.fail_after(seconds):
                event = await events.__anext__()
        except TimeoutError:
            return {"held": seconds}
        except StopAsyncIteration:
            raise RuntimeError("the listen stream ended while held") from None
        return {"event": repr(event)}


async def run_call(client, call):
    if "listen" in call:
        return await hold_listen(client, float(call["listen"]))
    if call.get("list"):
        return dump(await client.list_tools())
    return dump(await client.call_tool(call["tool"], call.get("arguments") or {}))


async def main(url, calls, token):
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    results = []
    async with http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=MODE, cache=None, read_timeout_seconds=30) as client:
            for call in calls:
                try:
                    results.append({"result": await run_call(client, call)})
                except MCPError as e:
                    results.append({"error": {"code": e.code, "message": e.message, "data": e.data}})
                except Exception as e:  # one failed call must not hide the others' results
                    results.append({"error": {"type": type(e).__name__, "message": str(e)}})
    print(json.dumps(results))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: MCP_TOKEN=... client.py URL CALLS_JSON")
    calls = json.loads(sys.argv[2])
    if not isinstance(calls, list):
        sys.exit("CALLS must be a JSON array")
    anyio.run(main, sys.argv[1], calls, os.environ.get("MCP_TOKEN", ""))
