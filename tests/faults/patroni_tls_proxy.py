#!/usr/bin/env python3
"""A Patroni REST API behind TLS and basic auth, for the Patroni source's test: serves GET
/cluster over HTTPS with the given certificate, answering 401 without the right credentials,
and relays the answer of a real member's plain-HTTP API.

    patroni_tls_proxy.py PORT CERT KEY USER PASSWORD UPSTREAM_URL
"""
import base64
import http.server
import ssl
import sys
import urllib.request

port, cert, key, user, password, upstream = sys.argv[1:7]
expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="patroni"')
            self.end_headers()
            return
        with urllib.request.urlopen(upstream + self.path, timeout=5) as answer:
            body = answer.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
