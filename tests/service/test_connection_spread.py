"""Kept-alive connections are spread over the API workers (serving/listen_sockets.py), and the
server is ready only once every worker has started (serving/readiness.py), and every worker has
a warm drift-check child.

With one shared listening socket, a burst of new connections could all land on one worker
(measured: 64 of 64), leaving the other idle for as long as the clients keep them open.
"""

from __future__ import annotations

import os
import socket
import time
from urllib.parse import urlparse

import httpx
import psutil

from serving.config import load_serving_config
from tests.service.test_service import records

CONNECTIONS = 64


def _workers(server) -> list[psutil.Process]:
    return [p for p in psutil.Process(server.process.pid).children(recursive=True)
            if "--worker-id" in " ".join(p.cmdline())]


def test_each_api_worker_listens_and_a_burst_of_connections_is_spread(heart_server) -> None:
    port = urlparse(heart_server.url).port
    workers = _workers(heart_server)
    assert len(workers) == load_serving_config().api_workers == 2
    listening = {p.pid: [c for c in p.net_connections("tcp")
                         if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
                 for p in workers}
    assert all(len(found) == 1 for found in listening.values()), listening
    # Sockets of their own (SO_REUSEPORT), not one socket inherited by both.
    inodes = {os.readlink(f"/proc/{pid}/fd/{found[0].fd}") for pid, found in listening.items()}
    assert len(inodes) == 2, inodes

    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)]
    try:
        deadline = time.monotonic() + 10
        while True:  # the workers accept in their own time
            held = [sum(c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
                        for c in p.net_connections("tcp")) for p in workers]
            if sum(held) >= CONNECTIONS or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert sum(held) == CONNECTIONS, held
        # The kernel hashes each connection to a worker's socket: about half each. A worker
        # with fewer than 10 of 64 happens by chance with probability about 1e-8.
        assert min(held) >= 10, f"connections per worker {held}"
    finally:
        for client in clients:
            client.close()


def test_only_api_workers_listen_in_service_mode(heart_service_mode_server) -> None:
    """The model service's process must not hold a listening socket of the API: the kernel
    would hash connections to it that nobody accepts (they hung until the client's timeout)."""
    server = heart_service_mode_server
    port = urlparse(server.url).port
    processes = psutil.Process(server.process.pid).children(recursive=True)
    listeners = {p.pid: " ".join(p.cmdline()) for p in processes
                 for c in p.net_connections("tcp")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
    assert len(listeners) == 2, listeners
    assert all("--service-name tabular_service" in cmd for cmd in listeners.values()), listeners
    answers = [httpx.post(f"{server.url}/predict", json=row, timeout=10)
               for row in records(server, 20)]
    assert [a.status_code for a in answers] == [200] * 20


def test_every_api_worker_warms_a_drift_check_child(heart_server) -> None:
    # POST /drift/check lands on any worker; only one runs the periodic check, but a cold
    # child there (a process start and Evidently's import) timed out the fuzzer's request.
    deadline = time.monotonic() + 90
    while True:
        warmed = {w.pid: [c for c in w.children(recursive=True)
                          if "forkserver" in " ".join(c.cmdline())]
                  for w in _workers(heart_server)}
        if all(warmed.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(warmed) == 2 and all(warmed.values()), warmed
