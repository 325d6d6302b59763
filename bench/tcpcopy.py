#!/usr/bin/env python3
"""Moves bytes over TCP for bench/run.sh's forwarding rows.

  tcpcopy.py sink HOST PORT        accept connections; read each to its end, answer the count
  tcpcopy.py send HOST PORT MIB    send MIB MiB of zeros, close the sending side, wait for the count
"""
import socket
import sys
import threading

CHUNK = 256 * 1024


def sink(host, port):
    srv = socket.create_server((host, port), reuse_port=False)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=drain, args=(conn,), daemon=True).start()


def drain(conn):
    total = 0
    with conn:
        while True:
            data = conn.recv(CHUNK)
            if not data:
                break
            total += len(data)
        conn.sendall(f"{total}\n".encode())


def send(host, port, mib):
    want = mib * 1024 * 1024
    buf = bytes(CHUNK)
    with socket.create_connection((host, port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        left = want
        while left > 0:
            n = s.send(buf[: min(CHUNK, left)])
            left -= n
        s.shutdown(socket.SHUT_WR)
        got = s.makefile().readline().strip()
    if got != str(want):
        sys.exit(f"the sink received {got or 'nothing'} of {want} bytes")


if __name__ == "__main__":
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "sink":
        sink(host, port)
    else:
        send(host, port, int(sys.argv[4]))
