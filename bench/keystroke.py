#!/usr/bin/env python3
"""Interactive latency: the round trip of one keystroke echoed by a remote PTY.

    keystroke.py N command...    runs `command... cat` under a local PTY (the client asks for a
                                 remote PTY), types N single characters one at a time and
                                 prints "p50 p99" in milliseconds of write-to-echo.
"""
import os
import pty
import select
import signal
import sys
import time
import tty


def read_until(fd, want, timeout):
    buf = b""
    end = time.monotonic() + timeout
    while want not in buf:
        left = end - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no {want!r} in {buf[-200:]!r}")
        r, _, _ = select.select([fd], [], [], left)
        if r:
            chunk = os.read(fd, 4096)
            if not chunk:
                raise EOFError(buf[-200:])
            buf += chunk
    return buf


def main():
    n = int(sys.argv[1])
    cmd = sys.argv[2:] + ["cat"]
    pid, fd = pty.fork()
    if pid == 0:
        tty.setraw(0)  # no local echo: every echo comes from the remote PTY
        os.execvp(cmd[0], cmd)
    # Wait until the remote cat echoes: the session is up.
    for _ in range(100):
        os.write(fd, b"r")
        try:
            read_until(fd, b"r", 0.2)
            break
        except TimeoutError:
            continue
    time.sleep(0.2)
    select.select([fd], [], [], 0)
    while select.select([fd], [], [], 0.05)[0]:
        os.read(fd, 4096)
    samples = []
    for i in range(n):
        ch = b"abcdefghijklmnopqrstuvwxyz"[i % 26 : i % 26 + 1]
        t0 = time.perf_counter()
        os.write(fd, ch)
        read_until(fd, ch, 5)
        samples.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.005)
    os.write(fd, b"\r\x04")  # ^D on an empty line ends the remote cat; then the client goes
    for _ in range(50):
        if os.waitpid(pid, os.WNOHANG)[0]:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    samples.sort()
    p50 = samples[len(samples) // 2]
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    print(f"{p50:.2f} {p99:.2f}")


if __name__ == "__main__":
    main()
