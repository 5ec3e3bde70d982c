"""Pieces the figure scripts in contrib/ share: a free loopback port, RESP
commands, abrupt closes and counting replies. Standard library only."""

import socket
import struct


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def command(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def reset_all(socks):
    for s in socks:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()


def count_replies(sock, word, n):
    """Reads until `word` has been seen n times (across read boundaries)."""
    seen, tail = 0, b""
    while seen < n:
        d = sock.recv(1 << 20)
        if not d:
            raise RuntimeError("connection closed")
        seen += (tail + d).count(word) - tail.count(word)
        tail = (tail + d)[-len(word):]
