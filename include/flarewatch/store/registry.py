"""Model registry: versions in S3 (``models/<name>/v<N>/``) plus the ``model_versions`` table.

Like MLflow's aliases: at most one version per model carries the alias ``champion``; pipelines
load the champion; a challenger is promoted only when the promotion gate says it is not worse
on the same held-out data.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from flarewatch.store import db
from flarewatch.store import objects as storage

CHAMPION = "champion"


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str


def promotion_gate(challenger: dict, champion: dict | None, metric: str, *, higher_is_better: bool = True,
                   min_delta: float = 0.0) -> GateDecision:
    """Promote the challenger only if ``metric`` is at least as good as the champion's (+ ``min_delta``).

    A challenger with a missing or non-finite metric is refused; with no champion it is promoted.
    """
    new = challenger.get(metric)
    if new is None or not math.isfinite(float(new)):
        return GateDecision(False, f"challenger has no finite {metric!r}")
    if champion is None:
        return GateDecision(True, f"no champion yet; challenger {metric}={float(new):.4f}")
    old = champion.get(metric)
    if old is None or not math.isfinite(float(old)):
        return GateDecision(True, f"champion has no finite {metric!r}; challenger {metric}={float(new):.4f}")
    new, old = float(new), float(old)
    better = new >= old + min_delta if higher_is_better else new <= old - min_delta
    verb = "not worse than" if better else "worse than"
    return GateDecision(better, f"challenger {metric}={new:.4f} is {verb} champion {metric}={old:.4f}")


def next_version(conn, model_name: str) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE model_name = %s", (model_name,))
        v = cur.fetchone()[0]
    conn.commit()
    return int(v)


def s3_prefix(model_name: str, version: int) -> str:
    return f"models/{model_name}/v{version}/"


def register(conn, s3, bucket: str, model_name: str, files: dict[str, Path], metrics: dict, *,
             params: dict | None = None, data_snapshot: str | None = None,
             library_versions: dict | None = None, version: int | None = None) -> int:
    """Upload ``files`` (name -> local path) and a metadata.json to S3, insert a ``model_versions`` row.

    Returns the version number. Re-registering the same (model, version) overwrites the objects
    and the row (idempotent retry).
    """
    version = version or next_version(conn, model_name)
    prefix = s3_prefix(model_name, version)
    for name, path in files.items():
        storage.put_bytes(s3, bucket, prefix + name, Path(path).read_bytes())
    meta = {"model_name": model_name, "version": version, "files": sorted(files), "metrics": metrics,
            "params": params or {}, "data_snapshot": data_snapshot, "library_versions": library_versions or {}}
    storage.put_bytes(s3, bucket, prefix + "metadata.json", json.dumps(meta, indent=2, default=str).encode(),
                      "application/json")
    with db.transaction(conn) as cur:
        cur.execute(
            """
            INSERT INTO model_versions (model_name, version, s3_prefix, metrics, params, data_snapshot, library_versions)
            VALUES (%s, %s, %s, %s::jsonb, %s::jsonb, %s, %s::jsonb)
            ON CONFLICT (model_name, version) DO UPDATE SET s3_prefix = EXCLUDED.s3_prefix,
              metrics = EXCLUDED.metrics, params = EXCLUDED.params, data_snapshot = EXCLUDED.data_snapshot,
              library_versions = EXCLUDED.library_versions
            """,
            (model_name, version, f"s3://{bucket}/{prefix}", json.dumps(metrics, default=str),
             json.dumps(params or {}, default=str), data_snapshot, json.dumps(library_versions or {})),
        )
    return version


def champion(conn, model_name: str) -> dict | None:
    """The champion's row as a dict (version, s3_prefix, metrics, ...), or None."""
    with conn.cursor() as cur:
        cur.execute("SELECT version, s3_prefix, metrics, params, data_snapshot, created_at FROM model_versions"
                    " WHERE model_name = %s AND alias = %s", (model_name, CHAMPION))
        row = cur.fetchone()
    conn.commit()
    if row is None:
        return None
    return dict(zip(("version", "s3_prefix", "metrics", "params", "data_snapshot", "created_at"), row))


def version_metrics(conn, model_name: str, version: int) -> dict:
    """The stored metrics of a registered version; LookupError when it is not registered."""
    with conn.cursor() as cur:
        cur.execute("SELECT metrics FROM model_versions WHERE model_name = %s AND version = %s", (model_name, version))
        row = cur.fetchone()
    conn.commit()
    if row is None:
        raise LookupError(f"{model_name} v{version} is not registered")
    return row[0] or {}


def merge_metrics(conn, model_name: str, version: int, metrics: dict) -> None:
    """Merge ``metrics`` into a version's stored metrics (e.g. the champion re-scored on the
    challenger's held-out data, so that the gate compares like with like)."""
    import json

    with db.transaction(conn) as cur:
        cur.execute("UPDATE model_versions SET metrics = metrics || %s::jsonb WHERE model_name = %s AND version = %s",
                    (json.dumps(metrics), model_name, version))


def record_decision(conn, model_name: str, version: int, reason: str) -> None:
    """Store a promotion decision on a version's row without moving the alias."""
    with db.transaction(conn) as cur:
        cur.execute("UPDATE model_versions SET decision = %s WHERE model_name = %s AND version = %s",
                    (reason, model_name, version))


def decide_and_promote(conn, model_name: str, version: int, metric: str, *, higher_is_better: bool = True,
                       min_delta: float = 0.0) -> GateDecision:
    """Apply the promotion gate to ``version`` against the current champion; move the alias if it passes.

    The decision (either way) is recorded on the version's row.
    """
    metrics = version_metrics(conn, model_name, version)
    current = champion(conn, model_name)
    if current is not None and current["version"] == version:
        return GateDecision(True, f"v{version} is already the champion")
    decision = promotion_gate(metrics, current["metrics"] if current else None, metric,
                              higher_is_better=higher_is_better, min_delta=min_delta)
    with db.transaction(conn) as cur:
        if decision.promote:
            cur.execute("UPDATE model_versions SET alias = NULL WHERE model_name = %s AND alias = %s",
                        (model_name, CHAMPION))
            cur.execute("UPDATE model_versions SET alias = %s WHERE model_name = %s AND version = %s",
                        (CHAMPION, model_name, version))
        cur.execute("UPDATE model_versions SET decision = %s WHERE model_name = %s AND version = %s",
                    (decision.reason, model_name, version))
    return decision
