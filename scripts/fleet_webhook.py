#!/usr/bin/env python3
"""The fleet sandbox's Alertmanager receiver: appends every notification it receives to a file,
one JSON object per line: {"received_at": <Unix time>, "notification": <Alertmanager's body>}.

    fleet_webhook.py PORT FILE      (GET /healthz answers 200)
"""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        line = json.dumps({"received_at": time.time(), "notification": json.loads(body)})
        with open(sys.argv[2], "a", encoding="utf-8") as out:
            out.write(line + "\n")
        self.send_response(200)
        self.end_headers()

    def do_GET(self):
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Receiver).serve_forever()
