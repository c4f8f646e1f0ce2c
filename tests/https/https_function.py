#!/usr/bin/env python3
"""An HTTPS function that is not ours, for tests/https/https_test.cc.

Usage: https_function.py --cert PEM --key PEM [--client-ca PEM] --dir DIR

Python's ssl + http.server (stdlib) on 127.0.0.1, a free port written to DIR/port once
listening. Answers every POST with 200 {} over HTTP/1.1 keep-alive, and appends to
DIR/events, one line each, flushed: "conn" per completed TLS handshake, "fail REASON" per
failed one, "req N" per POST of N records, then "rec TOPIC PARTITION OFFSET" per record of
the Lambda Kafka event, in the order received.
--client-ca: a client certificate signed by it is required (mutual TLS).
"""

import argparse
import json
import os
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--client-ca")
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        context.load_verify_locations(args.client_ca)
        context.verify_mode = ssl.CERT_REQUIRED

    lock = threading.Lock()
    events = open(os.path.join(args.dir, "events"), "a", encoding="utf-8")

    def record(lines):
        with lock:
            for line in lines:
                events.write(line + "\n")
            events.flush()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive

        def setup(self):
            # The handshake here, in the connection's thread, so a failed one is counted
            # and never blocks the accept loop.
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError) as e:
                record(["fail " + str(e).replace("\n", " ")])
                # A lingering close, as nginx does: a close with the client's request unread
                # would send a RST that can destroy the TLS alert before the client reads it.
                try:
                    self.request.shutdown(socket.SHUT_WR)
                    self.request.settimeout(2)
                    while self.request.recv(4096):
                        pass
                except OSError:
                    pass
                raise
            record(["conn"])
            super().setup()

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            lines = []
            try:
                event = json.loads(body)
                batches = list(event.get("records", {}).values())
                lines.append("req %d" % sum(len(b) for b in batches))
                for batch in batches:
                    for r in batch:
                        lines.append("rec %s %d %d" % (r["topic"], r["partition"], r["offset"]))
            except (ValueError, KeyError, AttributeError) as e:
                lines.append("bad " + str(e))
            record(lines)
            answer = b"{}"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, fmt, *a):
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def get_request(self):
            sock, addr = self.socket.accept()
            return context.wrap_socket(sock, server_side=True,
                                       do_handshake_on_connect=False), addr

        def handle_error(self, request, client_address):
            pass  # a failed handshake is in the events file already

    server = Server(("127.0.0.1", 0), Handler)
    port_file = os.path.join(args.dir, "port")
    with open(port_file + ".tmp", "w", encoding="utf-8") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)  # the test never reads half a number
    print("listening on", server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
