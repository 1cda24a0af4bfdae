"""A real dcoder serve app under uvicorn on 127.0.0.1, in a thread of the test process."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from dcoder.serving.server import ServeConfig, create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Running:
    def __init__(self, engine, config: ServeConfig):
        self.url = f"http://127.0.0.1:{config.port}"
        app = create_app(engine, config, "tiny")
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=config.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        for _ in range(200):  # bounded: 10 s
            if self.server.started:
                return
            time.sleep(0.05)
        raise RuntimeError("the server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
