#!/usr/bin/env python3
"""An Ollama-speaking HTTP server whose streamed answers pause on a file.

For spore's streaming tests (tests/jobs_stream.rs); Python standard library
only. ``POST /api/generate`` and ``POST /api/chat`` stream the prompt (the
last message's content for chat) back one word per JSON line, chunked, like
Ollama. After the first word's line the answer pauses until the file
``GATE_DIR/FIRST_WORD`` exists (polled every 50 ms, at most 60 s), then
sends the other words and a ``"done": true`` line. So a test can check that
the first line reached the client while the server is still paused.

Usage: ``gated_server.py --gate-dir DIR``. Prints ``{"port": N}`` on stdout
once listening, then serves until killed.
"""

import argparse
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY_BYTES = 1 << 20
GATE_WAIT_S = 60


class Handler(BaseHTTPRequestHandler):
    gate_dir = "."  # set in main
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("gated_server: " + (fmt % args) + "\n")

    def send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def write_chunk(self, obj):
        b = (json.dumps(obj) + "\n").encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(b), b))
        self.wfile.flush()

    def wait_gate(self, name):
        path = os.path.join(self.gate_dir, os.path.basename(name))
        until = time.monotonic() + GATE_WAIT_S
        while not os.path.exists(path) and time.monotonic() < until:
            time.sleep(0.05)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY_BYTES:
            self.send_json(400, {"error": "body too large"})
            return
        try:
            req = json.loads(self.rfile.read(n) or b"{}")
        except json.JSONDecodeError as e:
            self.send_json(400, {"error": "bad JSON: %s" % e})
            return
        if self.path == "/api/generate":
            text = str(req.get("prompt", ""))
            piece = lambda p: {"response": p}
        elif self.path == "/api/chat":
            text = str((req.get("messages") or [{}])[-1].get("content", ""))
            piece = lambda p: {"message": {"role": "assistant", "content": p}}
        else:
            self.send_json(404, {"error": "no route %s" % self.path})
            return
        words = text.split() or [""]
        model = req.get("model")
        if req.get("stream", True) is False:
            self.send_json(200, dict(piece(" ".join(words)), model=model, done=True))
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i, w in enumerate(words):
            self.write_chunk(dict(piece((" " if i else "") + w), model=model, done=False))
            if i == 0:
                self.wait_gate(w)
        self.write_chunk(dict(piece(""), model=model, done=True, done_reason="stop"))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gate-dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    Handler.gate_dir = a.gate_dir
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    print(json.dumps({"port": srv.server_address[1]}), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
