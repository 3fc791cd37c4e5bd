#!/usr/bin/env python3
"""Webhook receivers for the benchmark: /fast answers 204 at once, /slow after 2 s.
Prints its port. Usage: python3 load-tests/receivers.py"""
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Hooks(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path.startswith("/slow"):
            time.sleep(2)
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a hub killed at the end of a run resets its connections: not news


server = Server(("127.0.0.1", 0), Hooks)
print(server.server_address[1], flush=True)
server.serve_forever()
