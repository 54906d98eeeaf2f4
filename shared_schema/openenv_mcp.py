"""Wire types of the OpenEnv MCP tool door (`/openenv/tools`, env_server/service/integrations/openenv_mcp.py).

The shapes are those OpenEnv's `MCPToolClient` sends and reads in its production mode (`openenv` 0.10.0 and
`openenv-core` 0.3.0): JSON-RPC 2.0 over `POST /mcp` (`openenv/session/create`, `tools/list`, `tools/call`,
`openenv/session/close`), and its WebSocket session messages on `/ws`. As the other foreign protocols' types
(shared_schema/integrations.py), requests *ignore* unknown fields.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

_LENIENT = ConfigDict(extra="ignore")

# JSON-RPC 2.0 error codes (https://www.jsonrpc.org/specification#error_object), as OpenEnv uses them
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000  # the service refused: no open session (404), no checks left (409), at capacity (429)


class McpRequest(BaseModel):
    """`POST /openenv/tools/mcp`: one JSON-RPC 2.0 request."""

    model_config = _LENIENT

    jsonrpc: Literal["2.0"] = Field(default="2.0", description="Always `2.0`.")
    method: StrictStr = Field(
        max_length=64,
        description="`openenv/session/create`, `openenv/session/close`, `tools/list` or `tools/call`.",
    )
    params: dict[str, Any] | None = Field(
        default=None,
        description="`tools/call`: `name`, `arguments` and `session_id`; `openenv/session/close` and "
        "`tools/list`: `session_id`; `openenv/session/create`: optionally the episode's fields "
        "(those of `POST /v1/episodes`).",
    )
    id: StrictInt | StrictStr | None = Field(default=None, description="Echoed in the answer.")


class McpError(BaseModel):
    """Why a JSON-RPC request failed."""

    code: int = Field(description="JSON-RPC error code; -32000 when the service refused (see `data.status`).")
    message: str = Field(description="What went wrong, and what to do.")
    data: dict[str, Any] | None = Field(
        default=None, description="`status`: the HTTP status `/v1/episodes` would answer; `max_sessions`."
    )


class McpResponse(BaseModel):
    """A JSON-RPC 2.0 answer: `result` or `error`, never both."""

    jsonrpc: Literal["2.0"] = Field(default="2.0", description="Always `2.0`.")
    result: Any | None = Field(default=None, description="The method's result.")
    error: McpError | None = Field(default=None, description="Set when the request failed.")
    id: int | str | None = Field(default=None, description="The request's `id`.")


class McpTool(BaseModel):
    """One tool as MCP lists it (`tools/list`)."""

    name: str = Field(description="The tool's name.")
    description: str = Field(description="What it does, for the model.")
    inputSchema: dict[str, Any] = Field(description="JSON Schema of its arguments.")
