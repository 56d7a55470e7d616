"""A small MCP server on the official Python SDK (PyPI `mcp`), the e2e suite's second upstream.

Usage: python server.py PORT   (binds 127.0.0.1:PORT, endpoint /mcp, Streamable HTTP)

DNS-rebinding protection accepts exactly one Host, `127.0.0.1:PORT`: a request that still carries
the gate's own authority gets 421, so a working call proves the gate rewrote Host to the upstream's.
The `request_headers` tool reports what the upstream received, so tests can check that the bearer
token was not passed through.
"""

import sys

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings

port = int(sys.argv[1])
server = MCPServer("e2e-python-upstream")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def request_headers(ctx: Context) -> dict[str, str]:
    """The HTTP request headers this server received for this call (lower-cased names)."""
    return {k.lower(): v for k, v in (ctx.headers or {}).items()}


server.run(
    "streamable-http",
    host="127.0.0.1",
    port=port,
    transport_security=TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"127.0.0.1:{port}"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*"],
    ),
)
