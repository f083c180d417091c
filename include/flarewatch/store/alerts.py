"""Reading and acknowledging ``alerts`` (written by ``analytics.refresh``): the CLI now, the UI later."""

from __future__ import annotations

from flarewatch.store.db import fetch_dicts, transaction

STATUSES = ("open", "acknowledged", "resolved")


def list_alerts(conn, status: str | None = None, site_id: str | None = None, limit: int = 200) -> list[dict]:
    """Alerts, newest period first; ``status`` one of ``STATUSES`` or None for all."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    sql, args = "SELECT * FROM alerts WHERE true", []
    if status:
        sql += " AND status = %s"
        args.append(status)
    if site_id:
        sql += " AND site_id = %s"
        args.append(site_id)
    return fetch_dicts(conn, sql + " ORDER BY period_start DESC, alert_id DESC LIMIT %s", [*args, limit])


def acknowledge(conn, alert_id: int, by: str, *, resolve: bool = False) -> dict:
    """Mark an alert acknowledged (or resolved) by ``by`` now; LookupError for an unknown id."""
    if not by or not by.strip():
        raise ValueError("say who acknowledges the alert (by)")
    with transaction(conn) as cur:
        if resolve:
            cur.execute("UPDATE alerts SET status = 'resolved', resolved_by = %s, resolved_at = now(), updated_at = now(),"
                        " acknowledged_by = coalesce(acknowledged_by, %s), acknowledged_at = coalesce(acknowledged_at,"
                        " now()) WHERE alert_id = %s RETURNING alert_id, status", (by, by, alert_id))
        else:
            cur.execute("UPDATE alerts SET status = 'acknowledged', acknowledged_by = %s, acknowledged_at = now(),"
                        " updated_at = now() WHERE alert_id = %s AND status = 'open' RETURNING alert_id, status",
                        (by, alert_id))
        row = cur.fetchone()
        if row is None:
            cur.execute("SELECT status FROM alerts WHERE alert_id = %s", (alert_id,))
            found = cur.fetchone()
            if found is None:
                raise LookupError(f"no alert {alert_id}")
            return {"alert_id": alert_id, "status": found[0], "changed": False}
    return {"alert_id": row[0], "status": row[1], "changed": True}
