"""One listening socket per API worker (SO_REUSEPORT), so the kernel spreads connections.

`bentoml serve` opens one listening socket and hands it to every API worker. A worker that
wakes on a new connection accepts every connection waiting, so a burst of new clients
lands on whichever worker woke first: measured here with 64 kept-alive clients on two
workers, now and then 64 and 0 (or 62 and 2), and the server then gave 940-1,140 req/s on
one core instead of about 1,700 on two; the overload test's p99 varied tenfold between
runs with it. Circus, BentoML's process manager, can give each worker process a socket of
its own bound with SO_REUSEPORT (the kernel then hashes each new connection to one of
them), but BentoML never asks for it; this turns it on for the API server's socket.

Installed in the `bentoml serve` process (which imports service.py before it creates the
socket). With SO_REUSEPORT, a second server started by the same user on the same port
shares the traffic instead of failing with "address in use".
"""

from __future__ import annotations

import socket
from typing import Any

from _bentoml_impl.server.serving import API_SERVER_NAME
from circus.process import Process
from circus.sockets import CircusSocket

_FAMILY_NAMES = {socket.AF_INET: "AF_INET", socket.AF_INET6: "AF_INET6"}
_original_init = CircusSocket.__init__
_original_fds = Process._get_sockets_fds


def _init(self: CircusSocket, *args: Any, **kwargs: Any) -> None:
    wanted = (kwargs.get("name") == API_SERVER_NAME and not args and kwargs.get("path") is None
              and hasattr(socket, "SO_REUSEPORT")
              and kwargs.get("family", socket.AF_INET) in _FAMILY_NAMES)
    if wanted:
        kwargs["so_reuseport"] = True
    _original_init(self, *args, **kwargs)
    if wanted and self.so_reuseport:
        # circus makes each worker's socket from this description (process.py, at spawn);
        # only sockets made by its config loader carry one.
        self._cfg = {"name": kwargs["name"], "host": kwargs.get("host", "localhost"),
                     "port": str(kwargs.get("port", 8080)),
                     "family": _FAMILY_NAMES[kwargs.get("family", socket.AF_INET)],
                     "backlog": str(kwargs.get("backlog", 2048)), "so_reuseport": True}


def _sockets_fds(self: Process) -> dict[str, int] | None:
    """Circus's, plus: the worker's own socket, which circus makes only when the socket's
    name is in the watcher's `cmd`; BentoML passes it in `args`, so circus never does."""
    fds = _original_fds(self)
    if fds is None or self.watcher is None or self.watcher.sockets is None:
        return fds
    shared = self.watcher.sockets.get(API_SERVER_NAME)
    # Only for the API server's workers: circus hands every watcher all the sockets, and a
    # listening socket inherited by a process that never accepts (the model service in
    # `batching.mode: service`) would get its share of the connections and hold them.
    args = self.watcher.args
    command = " ".join(args) if isinstance(args, list | tuple) else str(args or "")
    wanted = f"circus.sockets.{API_SERVER_NAME}" in f"{self.watcher.cmd} {command}"
    if wanted and shared is not None and shared.so_reuseport and \
            fds.get(API_SERVER_NAME) == shared.fileno():
        own = CircusSocket.load_from_config(shared._cfg)
        own.bind_and_listen()
        fds[API_SERVER_NAME] = own.fileno()
        self._sockets.append(own)  # inherited by the worker; circus lets go after spawn
    return fds


def install() -> None:
    CircusSocket.__init__ = _init  # type: ignore[method-assign]
    Process._get_sockets_fds = _sockets_fds  # type: ignore[method-assign]


def is_installed() -> bool:
    return CircusSocket.__init__ is _init and Process._get_sockets_fds is _sockets_fds
