"""Calibration import speed on a large synthetic state-reported file made from the real sample.

The 1,385-line sample of ``tests/fixtures/reported-flares/`` is repeated with renamed keys (copy i
of well ``k`` becomes ``k-i``) until it has about ``--rows`` lines, every key mapped to a demo site;
the file is imported twice into a scratch Postgres (first import: inserts; second: the idempotent
rerun) and the rows/s of each are printed (and written to ``--out`` as JSON when given).

    PYTHONPATH=include python benchmarks/bench_calibration_import.py --rows 555118
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "tests" / "fixtures" / "reported-flares" / "reported_flares_sample.csv"


def synthetic_file(n_rows: int) -> tuple[bytes, dict]:
    """A reported-format CSV of about ``n_rows`` lines built from the sample, and its site map."""
    rows = list(csv.reader(io.StringIO(SAMPLE.read_text())))
    header, body = rows[0], rows[1:]
    copies = max(1, round(n_rows / len(body)))
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    site_map = {}
    for i in range(copies):
        for run, state, key_type, key, month, operator, flared in body:
            k = f"{key}-{i}"
            site_map[(state, key_type, k)] = "parshall"
            w.writerow([run, state, key_type, k, month, operator, flared])
    return out.getvalue().encode(), site_map


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=555_118)
    ap.add_argument("--gzip", action="store_true", help="import the file gzip-compressed")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    from flarewatch.dev import servers
    from flarewatch.meters import importer as cal
    from flarewatch.store import db
    from flarewatch.store.seed import migrate_and_seed

    data, site_map = synthetic_file(args.rows)
    if args.gzip:
        data = gzip.compress(data)
    results = {}
    with servers.scratch_postgres(None) as server, servers.temporary_database(server, "fw_bench") as dsn:
        conn = db.connect(dsn)
        migrate_and_seed(conn, site_map=False)
        for label in ("first", "rerun"):
            t0 = time.perf_counter()
            summary = cal.import_calibration(conn, data, imported_from="synthetic.csv", site_map=site_map)
            dt = time.perf_counter() - t0
            results[label] = {"rows": summary["rows"], "seconds": round(dt, 2),
                              "rows_per_s": round(summary["rows"] / dt),
                              **{k: summary.get(k) for k in ("accepted", "inserted", "updated", "unchanged",
                                                             "quarantined")}}
            print(label, json.dumps(results[label]))
        conn.close()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
