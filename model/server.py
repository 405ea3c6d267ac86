"""A small, stdlib-only inference server for the model baked into this image.

GET  /health   -> {"status": "ok", "version": ..., "model": ..., "model_sha256": ...}
POST /predict  <- {"inputs": [[f1, f2, f3, f4], ...]}
               -> {"predictions": [{"label": ..., "probabilities": {...}}, ...], "version": ...}

`server.py --healthcheck` asks a running server for /health and exits 0 when it answers ok
(the image's HEALTHCHECK).
"""

import hashlib
import json
import math
import os
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1 << 20
MAX_ROWS = 10_000


def load_model(path):
    with open(path, "rb") as f:
        raw = f.read()
    model = json.loads(raw)
    n_features = len(model["features"])
    if len(model["weights"]) != len(model["classes"]) or len(model["bias"]) != len(model["classes"]):
        raise ValueError("model: weights and bias need one row per class")
    if any(len(row) != n_features for row in model["weights"]):
        raise ValueError("model: every weight row needs one value per feature")
    model["sha256"] = hashlib.sha256(raw).hexdigest()
    return model


def predict(model, rows):
    out = []
    for row in rows:
        scores = [b + sum(w * x for w, x in zip(ws, row)) for ws, b in zip(model["weights"], model["bias"])]
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        total = sum(exps)
        probs = {c: e / total for c, e in zip(model["classes"], exps)}
        out.append({"label": max(probs, key=probs.get), "probabilities": probs})
    return out


def validate_rows(model, body):
    rows = body.get("inputs") if isinstance(body, dict) else None
    n = len(model["features"])
    if not isinstance(rows, list) or not rows:
        return None, 'expected {"inputs": [[...], ...]} with at least one row'
    if len(rows) > MAX_ROWS:
        return None, f"at most {MAX_ROWS} rows per request"
    for i, row in enumerate(rows):
        if (
            not isinstance(row, list)
            or len(row) != n
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in row)
        ):
            return None, f"row {i}: expected {n} finite numbers ({', '.join(model['features'])})"
    return rows, None


class Handler(BaseHTTPRequestHandler):
    model = None
    version = "unknown"

    def _send(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            self._send(200, {
                "status": "ok",
                "version": self.version,
                "model": self.model["name"],
                "model_sha256": self.model["sha256"],
            })
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self):
        if self.path != "/predict":
            self._send(404, {"error": "not found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_BODY:
            self._send(400, {"error": f"a JSON body of 1 to {MAX_BODY} bytes is required"})
            return
        try:
            body = json.loads(self.rfile.read(length))
        except ValueError:
            self._send(400, {"error": "the body is not valid JSON"})
            return
        rows, error = validate_rows(self.model, body)
        if error:
            self._send(400, {"error": error})
            return
        self._send(200, {"predictions": predict(self.model, rows), "version": self.version})

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))


def healthcheck(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return 0 if json.load(r).get("status") == "ok" else 1
    except Exception:
        return 1


def main():
    port = int(os.environ.get("PORT", "8080"))
    if "--healthcheck" in sys.argv:
        sys.exit(healthcheck(port))
    Handler.model = load_model(os.environ.get("MODEL_PATH", "/opt/model/model.json"))
    Handler.version = os.environ.get("MODEL_VERSION", "unknown")
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    print(f"serving {Handler.model['name']} version {Handler.version} on :{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
