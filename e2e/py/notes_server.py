"""A stateless MCP 2026-07-28 upstream on the official Python SDK (PyPI `mcp`), for the
authorization scenario (13): a tool that only reads and one the policy reserves to admins.

Usage: python notes_server.py PORT [--json]   (binds 127.0.0.1:PORT, endpoint /mcp, stateless
Streamable HTTP; --json answers requests in JSON instead of SSE)

`delete_note` counts every call that reaches it and `read_notes` reports that count, so a test can
tell whether a call the gate refused ever got here: the count is the upstream's own testimony.
`GET /hits` (plain HTTP, outside MCP) answers `{"mcp_posts": N}`, the POSTs to /mcp that reached
this process at all: the SDK server validates `Mcp-Name` against the body itself, so an unchanged
delete count alone could not tell "the gate refused it" from "the upstream refused it".
As in server.py, DNS-rebinding protection accepts only Host `127.0.0.1:PORT` on /mcp.
"""

import json
import sys

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

port = int(sys.argv[1])
json_response = "--json" in sys.argv[2:]
server = MCPServer("e2e-python-notes")

notes = ["buy milk", "rotate the signing key"]
delete_calls = 0


@server.tool()
def read_notes() -> dict:
    """The notes, and how many times delete_note was called."""
    return {"notes": list(notes), "delete_calls": delete_calls}


@server.tool()
def delete_note(index: int) -> str:
    """Delete the note at `index` (0-based). Counted even when the index is out of range."""
    global delete_calls
    delete_calls += 1
    if 0 <= index < len(notes):
        return f"deleted: {notes.pop(index)}"
    return "no such note"


mcp_app = server.streamable_http_app(
    stateless_http=True,
    json_response=json_response,
    transport_security=TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"127.0.0.1:{port}"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*"],
    ),
)
mcp_posts = 0


async def app(scope, receive, send):
    """The MCP app, with every POST to /mcp counted before it is handled, and GET /hits."""
    global mcp_posts
    if scope["type"] == "http" and scope["path"] == "/hits":
        body = json.dumps({"mcp_posts": mcp_posts}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
        return
    if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/mcp":
        mcp_posts += 1
    await mcp_app(scope, receive, send)


uvicorn.run(app, host="127.0.0.1", port=port, log_level="info")
