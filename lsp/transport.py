"""How clients reach the server: stdio (one client), or TCP, where every connection is a session
of its own (documents, settings, jobs, progress), and only the model and the inference thread
are shared."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Callable

from pygls.io_ import run_async

from dcoder.errors import DcoderError
from dcoder_lsp.rpc import StrictServer

log = logging.getLogger("dcoder.lsp")


def exit_code(server: StrictServer) -> int:
    """0 after shutdown, else 1: an ``exit`` without it, or the client went away."""
    code = server.protocol.exit_code
    return code if code is not None else 0 if server.protocol._shutdown else 1


def serve_stdio(server: StrictServer) -> int:
    server.start_io()
    return exit_code(server)


def serve_tcp(create: Callable[[], StrictServer], end: Callable[[StrictServer], None], host: str, port: int) -> None:
    """Serve until interrupted; ``end(server)`` stops a session's work once its client has gone."""

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server = create()
        stop = threading.Event()
        server.protocol.set_writer(writer)
        server.protocol.end_session = stop.set
        try:
            await run_async(stop_event=stop, reader=reader, protocol=server.protocol, logger=log,
                            error_handler=server.report_server_error)
        except Exception as exc:  # a broken connection or framing ends only this session
            log.warning("connection ended: %s: %s", exc.__class__.__name__, exc)
        finally:
            end(server)
            writer.close()

    async def listen() -> None:
        listener = await asyncio.start_server(session, host, port)
        async with listener:
            await listener.serve_forever()

    try:
        asyncio.run(listen())
    except OSError as exc:
        raise DcoderError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
