#!/usr/bin/env python3
"""Drives an Ollama API endpoint with the real `ollama` Python client and
checks the answers: used by tests/jobs_ollama.rs against a spore node's
Ollama-compatible front, and directly against minilm_server.py.

Usage: check_client.py http://127.0.0.1:PORT [API_TOKEN]
(the token, for a spore node's API, is sent as `Authorization: Bearer`).
Prints one JSON line with what it measured; exits non-zero on a failed
check (with the reason on stderr).
"""

import json
import sys
import time

import numpy as np
import ollama


def cos(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def main():
    host = sys.argv[1]
    headers = {"Authorization": "Bearer " + sys.argv[2]} if len(sys.argv) > 2 else None
    c = ollama.Client(host=host, timeout=120, headers=headers)
    tags = [m.model for m in c.list().models]
    assert any(t.startswith("all-minilm") for t in tags), tags
    t0 = time.monotonic()
    cat = c.embeddings(model="all-minilm", prompt="A cat sits on the warm windowsill.").embedding
    kitten = c.embeddings(model="all-minilm", prompt="A kitten is resting by the sunny window.").embedding
    ship = c.embeddings(model="all-minilm", prompt="The cargo ship left the harbour at dawn.").embedding
    took = time.monotonic() - t0
    assert len(cat) == 384, len(cat)
    assert abs(np.linalg.norm(cat) - 1.0) < 1e-4, np.linalg.norm(cat)
    near, far = cos(cat, kitten), cos(cat, ship)
    assert near > 0.5 and near > far + 0.2, (near, far)
    batch = c.embed(model="all-minilm", input=["A cat sits on the warm windowsill.", "hello"]).embeddings
    assert len(batch) == 2 and cos(batch[0], cat) > 0.999, cos(batch[0], cat)
    words = [p.response for p in c.generate(model="echo", prompt="one two three four", stream=True)]
    assert "".join(words).split() == ["one", "two", "three", "four"], words
    print(json.dumps({"similar": round(near, 4), "unrelated": round(far, 4),
                      "stream_parts": len(words), "three_embeddings_s": round(took, 3)}))


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        sys.stderr.write("check failed: %r\n" % (e.args,))
        sys.exit(1)
