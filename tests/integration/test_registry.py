"""Model registry against real Postgres + S3: versions, metadata, the promotion gate."""

from __future__ import annotations

import json

import pytest

from flarewatch.store import objects as storage
from flarewatch.store import registry

pytestmark = pytest.mark.integration


def test_promotion_gate_rules():
    assert registry.promotion_gate({"f1": 0.9}, None, "f1").promote
    assert registry.promotion_gate({"f1": 0.9}, {"f1": 0.9}, "f1").promote  # not worse
    refused = registry.promotion_gate({"f1": 0.89}, {"f1": 0.9}, "f1")
    assert not refused.promote and "worse than champion" in refused.reason
    assert not registry.promotion_gate({"f1": float("nan")}, {"f1": 0.5}, "f1").promote
    assert registry.promotion_gate({"mae": 1.0}, {"mae": 2.0}, "mae", higher_is_better=False).promote
    assert not registry.promotion_gate({"mae": 3.0}, {"mae": 2.0}, "mae", higher_is_better=False).promote
    assert not registry.promotion_gate({"f1": 0.905}, {"f1": 0.9}, "f1", min_delta=0.01).promote


def test_register_promote_and_refuse_a_worse_model(conn, s3, tmp_path):
    name = "detector-test"
    w = tmp_path / "best.pt"
    w.write_bytes(b"weights-v1")
    v1 = registry.register(conn, s3, "processed", name, {"best.pt": w}, {"f1": 0.90}, params={"epochs": 1})
    assert v1 == 1
    meta = json.loads(storage.get_bytes(s3, "processed", "models/detector-test/v1/metadata.json"))
    assert meta["metrics"] == {"f1": 0.90} and meta["files"] == ["best.pt"]
    assert storage.get_bytes(s3, "processed", "models/detector-test/v1/best.pt") == b"weights-v1"
    assert registry.decide_and_promote(conn, name, v1, "f1").promote
    assert registry.champion(conn, name)["version"] == 1

    v2 = registry.register(conn, s3, "processed", name, {"best.pt": w}, {"f1": 0.85})
    decision = registry.decide_and_promote(conn, name, v2, "f1")
    assert not decision.promote
    assert registry.champion(conn, name)["version"] == 1  # the worse model did not take over
    with conn.cursor() as cur:
        cur.execute("SELECT decision FROM model_versions WHERE model_name=%s AND version=2", (name,))
        assert "worse" in cur.fetchone()[0]
    conn.commit()

    # retrying the same registration overwrites, no duplicate version
    assert registry.register(conn, s3, "processed", name, {"best.pt": w}, {"f1": 0.85}, version=v2) == v2
    assert registry.next_version(conn, name) == 3
