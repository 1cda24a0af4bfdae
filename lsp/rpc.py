"""The JSON-RPC and LSP lifecycle rules pygls leaves to the server: every request gets exactly one
reply, whatever the client sends.

- params that do not fit the method: -32602 InvalidParams, with what is wrong (pygls drops the
  request and pops up "Error in server");
- a message that is not a JSON-RPC 2.0 request, or an id that is not a number or string:
  -32600 InvalidRequest (id null when it has no usable id); a body that is not JSON: -32700;
- before ``initialize``: -32002 ServerNotInitialized; a second ``initialize``: -32600;
- after ``shutdown``: -32600 (pygls answers nothing);
- ``exit`` ends with code 0 after ``shutdown``, 1 without; on TCP it ends only that connection.

Notifications that break these rules are dropped, as the specification says.
"""

from __future__ import annotations

import logging

from cattrs import transform_error
from cattrs.errors import ClassValidationError
from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcParseError,
    JsonRpcServerNotInitialized,
)
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

log = logging.getLogger("dcoder.lsp")


def _valid_id(value) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _why(exc: Exception) -> str:
    cause = exc.__cause__ if isinstance(exc.__cause__, ClassValidationError) else None
    if cause is None:
        return "malformed message"
    return "; ".join(transform_error(cause, path="$"))


class StrictProtocol(LanguageServerProtocol):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.initialize_seen = False
        self.exit_code: int | None = None  # set by ``exit``
        self.end_session = None  # TCP: ends this connection's session (instead of the process)

    def structure_message(self, data: dict):
        return data  # structured in handle_message: pygls would also take nested objects for messages

    def handle_message(self, raw) -> None:
        """``raw``: the parsed body, as it came."""
        try:
            self._dispatch(raw)
        except Exception as exc:  # e.g. $/cancelRequest with an id pygls cannot look up: log it, go on
            log.error("could not handle a message: %s: %s", exc.__class__.__name__, exc)

    def _dispatch(self, raw) -> None:
        if not isinstance(raw, dict):
            self.refuse(None, JsonRpcInvalidRequest("a message must be a JSON object (batches are not supported)"))
            return
        method, has_id, msg_id = raw.get("method"), "id" in raw, raw.get("id")
        message, why = None, None
        if raw.get("jsonrpc") == "2.0":
            try:
                message = super().structure_message(raw)
            except JsonRpcException as exc:
                why = _why(exc)
        if message is None and why is None:
            if has_id and method is not None:
                self.refuse(msg_id, JsonRpcInvalidRequest("not a JSON-RPC 2.0 request"))
            else:
                log.warning("dropped a message that is not JSON-RPC 2.0")
        elif method is None:
            if not has_id:
                self.refuse(None, JsonRpcInvalidRequest("a message needs a method or an id"))
            elif why is None:
                super().handle_message(message)  # the client's reply to one of our requests
            elif _valid_id(msg_id):  # a garbled reply fails the request that waits for it
                self._handle_response(msg_id, None, JsonRpcInvalidParams(f"invalid reply: {why}").to_response_error())
        elif not has_id:
            if method == types.EXIT and why is None:
                super().handle_message(message)
            elif why is not None or self._shutdown or not self.initialize_seen:
                log.warning("dropped a notification %r: %s", method, why or "the server is not running")
            else:
                super().handle_message(message)
        elif not _valid_id(msg_id):
            self.refuse(None, JsonRpcInvalidRequest(f"a request id must be a number or a string, got {msg_id!r}"))
        elif not isinstance(method, str):
            self.refuse(msg_id, JsonRpcInvalidRequest("a request method must be a string"))
        elif self._shutdown:
            self.refuse(msg_id, JsonRpcInvalidRequest("the server has shut down; only exit is accepted"))
        elif method != types.INITIALIZE and not self.initialize_seen:
            self.refuse(msg_id, JsonRpcServerNotInitialized("the server is not initialized yet"))
        elif why is not None:
            self.refuse(msg_id, JsonRpcInvalidParams(f"invalid params for {method}: {why}"))
        elif not hasattr(message, "id"):  # the LSP types say this method is a notification
            self.refuse(msg_id, JsonRpcInvalidRequest(f"{method} is a notification, not a request"))
        elif method == types.INITIALIZE and self.initialize_seen:
            self.refuse(msg_id, JsonRpcInvalidRequest("the server is already initialized"))
        else:
            self.initialize_seen = True
            super().handle_message(message)

    def refuse(self, msg_id, error: JsonRpcException) -> None:
        log.warning("refused a request: %s", error.message)
        if _valid_id(msg_id):
            self._send_response(msg_id, error=error.to_response_error())
        else:  # "id": null, which the LSP types would leave out
            self._send_data({"jsonrpc": "2.0", "id": None, "error": {"code": error.code, "message": error.message}})

    def unreadable(self) -> None:
        """The body of a message was not JSON."""
        self.refuse(None, JsonRpcParseError("the message is not valid JSON"))

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args):
        self.exit_code = 0 if self._shutdown else 1
        if self.end_session is not None:
            self.end_session()
            return
        yield from super().lsp_exit(*args)


class StrictServer(LanguageServer):
    def report_server_error(self, error: Exception, source) -> None:
        if source is JsonRpcException:  # only the read loop says so: the body was not JSON
            self.protocol.unreadable()
        else:
            super().report_server_error(error, source)


class OneLine(logging.Formatter):
    """Log records as one line each: the server's stderr shows no tracebacks."""

    def format(self, record: logging.LogRecord) -> str:
        text = (record.getMessage().splitlines() or [""])[0]
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text += f" ({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        return f"dcoder lsp: {record.levelname.lower()}: {text}"


def log_one_line_per_record() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(OneLine())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
