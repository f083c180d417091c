"""The per-site results table of ``flarewatch summary`` and ``flarewatch demo``: flares, gas, CO2."""

from __future__ import annotations

from datetime import date


def site_rows(conn, start: date, end: date) -> list[tuple]:
    """One row per active site over acquisition dates ``start`` .. ``end``: site, country, days,
    flares, of which Sentinel-2, of which VIIRS-only, gas (1000 m3), CO2 t, CO2e t."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT s.site_id, s.country, count(d.day) AS days,
                   coalesce(sum(d.n_flares), 0), coalesce(sum(d.n_flares_s2), 0),
                   coalesce(sum(d.n_flares_viirs_only), 0),
                   coalesce(sum(d.volume_kscm), 0), coalesce(sum(d.co2_t), 0), coalesce(sum(d.co2e_t), 0)
            FROM sites s
            LEFT JOIN emissions_daily d ON d.site_id = s.site_id AND d.day BETWEEN %s AND %s
            WHERE s.active
            GROUP BY s.site_id, s.country ORDER BY s.site_id
            """,
            (start, end),
        )
        rows = cur.fetchall()
    conn.commit()
    return rows


def summary_lines(conn, start: date, end: date) -> list[str]:
    """The table as text lines (a blank line and a title first, a legend last)."""
    rows = site_rows(conn, start, end)
    out = ["", f"Per-site results, acquisition dates {start} .. {end}:"]
    hdr = f"{'site':16s} {'country':14s} {'days':>4s} {'flares':>6s} {'(S2':>4s} {'VIIRS)':>6s} " \
          f"{'gas 1000 m3':>12s} {'CO2 t':>10s} {'CO2e t':>10s}"
    out += [hdr, "-" * len(hdr)]
    n_tot, vol_tot, co2_tot, co2e_tot = 0, 0.0, 0.0, 0.0
    for site, country, days, n, n_s2, n_v, vol, co2, co2e in rows:
        out.append(f"{site:16s} {country:14s} {days:4d} {n:6d} {n_s2:4d} {n_v:6d} {vol:12.1f} {co2:10.1f} {co2e:10.1f}")
        n_tot, vol_tot, co2_tot, co2e_tot = n_tot + n, vol_tot + vol, co2_tot + co2, co2e_tot + co2e
    out.append("-" * len(hdr))
    out.append(f"{'total':16s} {'':14s} {'':4s} {n_tot:6d} {'':4s} {'':6s} {vol_tot:12.1f} {co2_tot:10.1f} "
               f"{co2e_tot:10.1f}")
    out.append("flares = site-days x flares seen (S2 = found in Sentinel-2; VIIRS = night-only, e.g. S2 clouded)")
    return out
