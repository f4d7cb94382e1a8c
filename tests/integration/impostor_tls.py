#!/usr/bin/env python3
"""An impostor server for the TLS refusal tests: it stands on a target's address with a
certificate the client must refuse, speaks just enough of the protocol to reach the TLS handshake
(PostgreSQL's SSLRequest, MySQL's greeting and SSL request, Redis and memcached directly), and
records everything it receives, in the clear and, if a handshake succeeded, decrypted.

    impostor_tls.py PROTOCOL PORT CERT KEY LOG      (PROTOCOL: postgres, mysql or redis)

One JSON line per connection goes to LOG: the bytes received before TLS (hex), the handshake's
outcome, and the application bytes received after it (hex). It serves until killed.
"""
import json
import socket
import ssl
import struct
import sys
import threading

protocol, port, cert, key, log_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
log_lock = threading.Lock()


def read_exactly(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def mysql_greeting():
    # Protocol 10: version, connection id, scramble, and capabilities that offer TLS
    # (CLIENT_SSL) with the 4.1 protocol and plugin authentication.
    caps = 0x0001 | 0x0008 | 0x0200 | 0x0800 | 0x8000 | 0x80000
    body = b"\x0a" + b"5.5.5-10.11.0-MariaDB-impostor\x00" + struct.pack("<I", 7)
    body += b"abcdefgh\x00" + struct.pack("<H", caps & 0xFFFF) + b"\x21" + struct.pack("<H", 2)
    body += struct.pack("<H", caps >> 16) + bytes([21]) + b"\x00" * 10 + b"ijklmnopqrst\x00"
    body += b"mysql_native_password\x00"
    return struct.pack("<I", len(body))[:3] + b"\x00" + body


def before_tls(conn):
    """What the protocol sends in the clear before TLS starts; returns the bytes received."""
    if protocol == "postgres":
        request = read_exactly(conn, 8)  # SSLRequest: length 8, code 80877103
        conn.sendall(b"S")
        return request
    if protocol == "mysql":
        conn.sendall(mysql_greeting())
        header = read_exactly(conn, 4)
        if len(header) < 4:
            return header
        length = header[0] | header[1] << 8 | header[2] << 16
        return header + read_exactly(conn, length)
    return b""


def serve(conn):
    record = {"protocol": protocol}
    conn.settimeout(5)
    try:
        record["before_tls"] = before_tls(conn).hex()
        try:
            tls = context.wrap_socket(conn, server_side=True)
            record["handshake"] = "completed"
        except (ssl.SSLError, OSError) as e:
            record["handshake"] = "failed: " + str(e)
            tls = None
        received = b""
        if tls is not None:
            try:
                while len(received) < 65536:
                    chunk = tls.recv(4096)
                    if not chunk:
                        break
                    received += chunk
            except (ssl.SSLError, OSError):
                pass
        record["after_tls"] = received.hex()
    finally:
        conn.close()
        with log_lock, open(log_path, "a") as log:
            log.write(json.dumps(record) + "\n")


listener = socket.create_server(("127.0.0.1", port), reuse_port=False)
while True:
    connection, _ = listener.accept()
    threading.Thread(target=serve, args=(connection,), daemon=True).start()
