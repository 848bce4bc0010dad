#!/usr/bin/env python3
"""A local HTTP server for mlplat's download and bundle tests (loopback or the testbed's bridge only).

Serves files under --root, with byte ranges, and misbehaves on request by path prefix:
  /cut/<path>     the first request sends half the body then drops the connection; later ones are normal
  /stall/<path>   sends the headers and 1 KiB, then nothing (until --stall-seconds pass)
  /norange/<path> ignores Range headers (sends 200 and the whole file)
Anything missing is a 404. Each request is appended to --log as a JSON line. Prints the port on
stdout once listening. Exits by itself after --max-seconds, so a test that dies leaves no server.
"""
import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

args = None
cut_done = set()
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def record(self, status, path):
        with lock, open(args.log, "a") as f:
            f.write(json.dumps({"path": path, "range": self.headers.get("Range"), "status": status}) + "\n")

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        mode = None
        for prefix in ("cut", "stall", "norange"):
            if path.startswith("/" + prefix + "/"):
                mode, path = prefix, path[len(prefix) + 1:]
        local = os.path.normpath(os.path.join(args.root, path.lstrip("/")))
        if not local.startswith(os.path.abspath(args.root)) or not os.path.isfile(local):
            self.record(404, self.path)
            body = b"not found\n"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        with open(local, "rb") as f:
            data = f.read()
        start = 0
        rng = self.headers.get("Range")
        if rng and mode != "norange" and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(data):
                self.record(416, self.path)
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % len(data))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        else:
            status = 200
        body = data[start:]
        self.record(status, self.path)
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if mode == "cut":
            with lock:
                first = path not in cut_done
                cut_done.add(path)
            if first:
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
        if mode == "stall":
            self.wfile.write(body[:1024])
            self.wfile.flush()
            time.sleep(args.stall_seconds)
            self.close_connection = True
            return
        self.wfile.write(body)


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--log", required=True)
    p.add_argument("--stall-seconds", type=float, default=60)
    p.add_argument("--max-seconds", type=float, default=900)
    args = p.parse_args()
    args.root = os.path.abspath(args.root)
    class Server(ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            pass  # a client that hangs up (the stall and cut tests do) is expected

    server = Server((args.bind, 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    threading.Timer(args.max_seconds, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
