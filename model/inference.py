"""The model: strict JSON, loading the model file (and its shards), and the prediction.

Plain functions over plain values; server.py serves them over HTTP.
"""

import hashlib
import json
import math
import os

MAX_ROWS = 10_000


class BadNumber(ValueError):
    """A JSON number that is not a finite double, or a NaN/Infinity literal."""


def _finite(text):
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 24 else f"{text[:12]}...({len(text)} characters)"
        raise BadNumber(f"the number {shown} is too large: numbers must be finite doubles")
    return value


def _no_constant(name):
    raise BadNumber(f"{name} is not JSON")


def parse_json(data):
    """Strict JSON: every number a finite float (a 400-digit integer is refused, not converted),
    no NaN/Infinity literals. Raises ValueError (BadNumber for numbers) or RecursionError."""
    return json.loads(data, parse_int=_finite, parse_float=_finite, parse_constant=_no_constant)


def load_model(path):
    with open(path, "rb") as f:
        raw = f.read()
    model = parse_json(raw)
    n_features = len(model["features"])
    n_classes = len(model["classes"])
    if len(model["weights"]) != n_classes or len(model["bias"]) != n_classes:
        raise ValueError("model: weights and bias need one row per class")
    if any(len(row) != n_features for row in model["weights"]):
        raise ValueError("model: every weight row needs one value per feature")
    model["file_sha256"] = "sha256:" + hashlib.sha256(raw).hexdigest()
    shards = model.get("shards", [])
    if not isinstance(shards, list) or not all(isinstance(s, str) and s for s in shards):
        raise ValueError("model: shards must be a list of file names")
    model["shard_sha256"] = {s: file_sha256(os.path.join(os.path.dirname(path), s)) for s in shards}
    return model


def file_sha256(path):
    """`sha256:<hex>` of a file, read in 4 MiB chunks (a shard may be many GiB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(4 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


class Unprocessable(ValueError):
    """Well-formed input the model cannot answer with finite numbers."""


def predict(model, rows):
    out = []
    for i, row in enumerate(rows):
        scores = [
            b + sum(w * x for w, x in zip(ws, row))
            for ws, b in zip(model["weights"], model["bias"])
        ]
        if not all(math.isfinite(s) for s in scores):
            raise Unprocessable(
                f"row {i}: the values are too large for this model (its scores overflow); "
                "send the features on their usual scale"
            )
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
        # parse_json makes every number a finite float; true/false stay bool and are refused.
        if not isinstance(row, list) or len(row) != n or not all(type(x) is float for x in row):
            return None, f"row {i}: expected {n} finite numbers ({', '.join(model['features'])})"
    return rows, None
