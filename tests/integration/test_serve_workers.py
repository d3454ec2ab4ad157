"""``postoffice serve`` with a master and worker processes (``[server] workers``).

A real server with two workers: the master binds and logs, the workers serve
and deliver; a worker that dies is replaced; the per-client connection limit
holds across workers; the workers die with a master killed by SIGKILL, so
the port is free for the next server at once; SIGHUP is the master's alone.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from postoffice.server.master import worker_count

from .smtp_fixtures import (
    OUTSIDER,
    SmtpServer,
    running,
    set_config_values,
    wait_for,
)

WORKERS = 2


class WorkersServer(SmtpServer):
    def setup(self) -> SmtpServer:
        super().setup()
        set_config_values(self.config, "server", {"workers": WORKERS})
        set_config_values(self.config, "pop3", {"max_connections_per_client": 2})
        return self


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SmtpServer]:
    limits: dict[str, object] = {"max_connections_per_client": 3}
    with running(WorkersServer(tmp_path / "var", users=("demo",), smtp=limits)) as srv:
        wait_for(lambda: len(srv.worker_pids()) == WORKERS, what="the workers")
        yield srv


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    return status.rsplit(")", 1)[1].split()[0] != "Z"


def replaced(server: SmtpServer, victim: int) -> bool:
    """All workers there again, ``victim`` not among them."""
    pids = server.worker_pids()
    return len(pids) == WORKERS and victim not in pids


def send(server: SmtpServer, tok: str) -> None:
    with server.connect(OUTSIDER) as client:
        client.ehlo()
        client.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\n")
        assert [r.code for r in client.replies(3)] == [250, 250, 354]
        client.send(f"Subject: {tok}\r\n\r\nbody\r\n.\r\n".encode())
        assert client.reply().code == 250
        assert client.command("QUIT").code == 221


def test_the_master_logs_and_the_workers_serve_and_deliver(server: SmtpServer) -> None:
    log = server.maillog()
    master = server.pid
    assert f"postoffice/master[{master}]: daemon started" in log
    assert f"{WORKERS} worker processes" in log
    assert f"postoffice/master[{master}]: ready:" in log
    for number in range(6):
        send(server, f"workers-{number}")
    for number in range(6):
        server.wait_delivered(f"workers-{number}".encode())
    server.wait_queue_empty()
    serving = {int(pid) for pid in re.findall(r"postoffice/smtpd\[(\d+)\]", server.maillog())}
    assert serving and serving <= set(server.worker_pids())
    assert master not in serving


def test_a_worker_that_dies_is_replaced(server: SmtpServer) -> None:
    victim = server.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    server.wait_log(rf"worker \d \(pid {victim}\) was killed by signal 9; starting another")
    wait_for(lambda: replaced(server, victim), what="a new worker")
    send(server, "after-a-worker-died")
    server.wait_delivered(b"after-a-worker-died")


def test_the_connection_limit_per_client_holds_across_workers(server: SmtpServer) -> None:
    clients = [server.connect(OUTSIDER) for _ in range(3)]
    try:
        # Whichever worker took each of the three, a fourth is one too many.
        refused = server.connect(OUTSIDER, greeting=False)
        with refused:
            reply = refused.reply()
            assert (reply.code, reply.text) == (
                421,
                "4.7.0 Error: too many connections from your address",
            )
        clients.pop().close()

        def admitted_again() -> bool:
            with server.connect(OUTSIDER, greeting=False) as client:
                return client.reply().code == 220

        wait_for(admitted_again, what="a connection admitted after one closed")
    finally:
        for client in clients:
            client.close()


def test_the_pop3_connection_limit_holds_across_workers_and_both_ports(
    server: SmtpServer,
) -> None:
    def greeting(port: int) -> tuple[socket.socket, bytes]:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        return sock, sock.recv(1024)

    plain, answer = greeting(server.pop3_port)
    assert answer.startswith(b"+OK")
    implicit = socket.create_connection(("127.0.0.1", server.pop3s_port), timeout=10)
    try:
        time.sleep(0.2)  # the pop3s connection is counted once accepted
        refused, answer = greeting(server.pop3_port)
        refused.close()
        assert answer.startswith(b"-ERR [SYS/TEMP] Too many connections"), answer
    finally:
        plain.close()
        implicit.close()

    def admitted_again() -> bool:
        sock, answer = greeting(server.pop3_port)
        sock.close()
        return answer.startswith(b"+OK")

    wait_for(admitted_again, what="a POP3 connection admitted after the others closed")


def test_sighup_is_handled_by_the_master_alone(server: SmtpServer) -> None:
    os.kill(server.pid, signal.SIGHUP)
    server.wait_log(r"master\[\d+\]: reload -- configuration re-read and valid")
    time.sleep(0.3)
    assert server.maillog().count("reload -- configuration re-read") == 1
    assert len(server.worker_pids()) == WORKERS


def test_workers_die_with_a_killed_master_and_free_the_port(server: SmtpServer) -> None:
    workers = server.worker_pids()
    port = server.port
    server.kill()
    wait_for(lambda: not any(alive(pid) for pid in workers), what="the workers to die")
    server.start()  # on port 0 again
    with server.connect(OUTSIDER) as client:
        assert client.command("QUIT").code == 221
    ports = (server.port, server.pop3_port, server.pop3s_port, server.imap_port)
    ports += (server.imaps_port, server.submission_port, server.submissions_port)
    if port in ports:
        return  # the kernel gave the port to the new server: the old one had let it go
    with socket.socket() as probe:  # nothing listens on the killed server's port any more
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_sigterm_stops_the_master_and_its_workers(server: SmtpServer) -> None:
    workers = server.worker_pids()
    server.stop()
    assert server.process is not None and server.process.returncode == 0
    assert not any(alive(pid) for pid in workers)
    assert "terminating on signal" in server.maillog()


class AloneServer(SmtpServer):
    def setup(self) -> SmtpServer:
        super().setup()
        set_config_values(self.config, "server", {"workers": 1})
        return self


def test_one_worker_means_one_process_that_does_everything(tmp_path: Path) -> None:
    with running(AloneServer(tmp_path / "var", users=("demo",))) as alone:
        assert alone.worker_pids() == []
        assert "worker processes" not in alone.maillog()
        send(alone, "alone")
        alone.wait_delivered(b"alone")
        served = set(re.findall(r"postoffice/smtpd\[(\d+)\]", alone.maillog()))
        assert served == {str(alone.pid)}


def test_workers_zero_means_one_per_core() -> None:
    cores = len(os.sched_getaffinity(0))
    assert worker_count(0) == min(cores, 16)
    assert worker_count(3) == 3


def test_a_replacement_worker_runs_the_configuration_the_server_started_with(
    server: SmtpServer,
) -> None:
    def sizes() -> set[str]:
        seen = set()
        for _ in range(6):  # either worker may answer
            with server.connect(OUTSIDER) as client:
                seen.update(re.findall(r"SIZE (\d+)", client.ehlo().text))
        return seen

    started_with = sizes()
    assert len(started_with) == 1
    set_config_values(server.config, "smtp", {"max_message_size": 20480})
    os.kill(server.pid, signal.SIGHUP)  # checked, not applied
    server.wait_log(r"reload -- configuration re-read and valid")
    for victim in server.worker_pids():  # every worker replaced, one after the other
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda pid=victim: replaced(server, pid), what="a new worker")
        server.wait_log(rf"pid {victim}\) was killed by signal 9; starting another")
    time.sleep(0.5)  # the new workers open their stores before they accept
    assert sizes() == started_with
