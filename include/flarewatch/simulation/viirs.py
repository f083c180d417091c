"""The simulated VIIRS Nightfire night after a daytime pass: VNF-schema CSV rows and their truth.

Assumptions are listed in ``simulation.scene``'s docstring (VIIRS paragraph).
"""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, date, datetime, timedelta

import numpy as np

from flarewatch import physics
from flarewatch.config import (
    VNF_FILL_VALUE,
)
from flarewatch.simulation.common import Climate, cloud_fraction_target, seeded_rng
from flarewatch.simulation.flares import FlareTruth
from flarewatch.sites import Site
from flarewatch.tiles import (
    crs_transformer,
)

# VIIRS M-band central wavelengths, um (NOAA JPSS VIIRS SDR User's Guide, band table). Used to
# synthesise the Rad_Mxx columns of the VNF CSV.
VIIRS_BAND_UM = {
    "M07": 0.865,
    "M08": 1.24,
    "M10": 1.61,
    "M12": 3.70,
    "M13": 4.05,
    "M14": 8.55,
    "M15": 10.763,
    "M16": 12.013,
}


VNF_COLUMNS = (
    "id_Key", "Date_Mscan", "Lat_GMTCO", "Lon_GMTCO", "Temp_BB", "Temp_Bkg", "ESF_BB", "RHI", "RH",
    "Area_Pixel", "Area_BB", "Cloud_Mask", "QF_Detect", "QF_Fit", "Rad_M07", "Rad_M08", "Rad_M10",
    "Rad_M12", "Rad_M13", "Rad_M14", "Rad_M15", "Rad_M16",
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# VIIRS Nightfire
# --------------------------------------------------------------------------------------------
def _fmt(v: float, digits: int) -> str:
    return f"{v:.{digits}g}"


def viirs_night(site: Site, day: date, lc: str, clim: Climate, flares: list[FlareTruth], fires: list[dict]):
    """VNF CSV text and its truth for the night after ``day``'s pass (see module docstring)."""
    rng = seeded_rng("night-viirs", site.site_id, day.isoformat())
    night = day + timedelta(days=1)
    doy = night.timetuple().tm_yday
    cf_night = cloud_fraction_target(rng, clim)
    offset_min = float(rng.uniform(-45.0, 45.0))
    scan = abs(offset_min) / 45.0  # 0 at nadir .. 1 at the swath edge (assumption)
    scan_time = datetime(night.year, night.month, night.day, tzinfo=UTC) + timedelta(
        hours=1.5 - site.lon / 15.0, minutes=offset_min
    )
    area_pixel_km2 = 0.4 + 0.4 * scan * scan
    side_m = math.sqrt(area_pixel_km2) * 1000.0
    grid_off = rng.uniform(0.0, side_m, size=2)
    hemi = 1.0 if site.lat >= 0 else -1.0
    t_bkg = clim.t_bkg_k + clim.t_bkg_amp_k * hemi * math.cos(2 * math.pi * (doy - 200) / 365.0) + rng.normal(0, 2)
    t_bkg = float(np.clip(t_bkg, 240.0, 320.0))

    fwd = crs_transformer(4326, site.utm_epsg)
    inv = crs_transformer(site.utm_epsg, 4326)
    # group lit stacks by VIIRS pixel; fires get rows of their own
    groups: dict[tuple[int, int], list] = {}
    for f in flares:
        if not f.active:
            continue
        x, y = fwd.transform(f.lon, f.lat)
        cell = (int(math.floor((x + grid_off[0]) / side_m)), int(math.floor((y + grid_off[1]) / side_m)))
        groups.setdefault(cell, []).append(("flare", f.flare_id, x, y, f.temperature_k, f.flame_area_m2))
    sources = [v for _, v in sorted(groups.items())]
    for fi in fires:
        if fi["burning_at_night"]:
            x, y = fwd.transform(fi["lon"], fi["lat"])
            # overnight the front has died down to smouldering patches: smaller, cooler (assumption)
            sources.append([("fire", fi["fire_id"], x, y, fi["temperature_k"] - 50.0, fi["area_m2"] * 0.5)])

    rows, detections = [], []
    for members in sources:
        u_cloud, u_det, u_att = rng.random(), rng.random(), rng.uniform(0.3, 0.8)
        jit_r, jit_a = rng.uniform(150.0, 350.0), rng.uniform(0, 2 * math.pi)
        dt, area_noise, rad_noise = rng.normal(0, 60.0), rng.lognormal(0.0, 0.3), rng.normal(0, 0.02, size=8)
        qf_u = rng.integers(0, 2)
        t_row = scan_time + timedelta(seconds=float(rng.uniform(-1.5, 1.5)))  # along-scan timing
        areas = np.array([m[5] for m in members])
        temps = np.array([m[4] for m in members])
        rh_true = float(np.sum(physics.radiant_heat_mw(temps, areas)))
        cloudy = u_cloud < cf_night
        # detection probability (assumption): small sources (< ~0.2 MW, ~360 m3/h) are often
        # missed (cf. Seymour et al. 2025, domain.md), cloud hides most of the rest
        p_det = (1.0 / (1.0 + (0.2 / max(rh_true, 1e-9)) ** 2)) * (0.5 if cloudy else 0.97)
        if u_det >= p_det:
            continue
        w = areas * temps**4
        x = float(np.average([m[2] for m in members], weights=w)) + jit_r * math.cos(jit_a)
        y = float(np.average([m[3] for m in members], weights=w)) + jit_r * math.sin(jit_a)
        lon, lat = inv.transform(x, y)
        t_bb = float(max(500.0, np.average(temps, weights=areas) + dt))
        area_bb = float(areas.sum() * area_noise * (u_att if cloudy else 1.0))
        rh = float(physics.radiant_heat_mw(t_bb, area_bb))
        esf = area_bb / (area_pixel_km2 * 1e6)
        rads = {}
        n_fill = 0
        for i, (band, lam) in enumerate(VIIRS_BAND_UM.items()):
            src = esf * float(physics.planck_radiance(lam, t_bb))
            bkg = 0.97 * float(physics.planck_radiance(lam, t_bkg)) * (1 - esf) if lam > 3.0 else 0.0
            val = (src + bkg) * (1.0 + rad_noise[i])
            # M07/M08 at night see only the hot source; below ~0.05 W m-2 sr-1 um-1 they are not
            # detected and carry the fill value (assumption)
            if band in ("M07", "M08") and src < 0.05:
                rads[band] = str(VNF_FILL_VALUE)
                n_fill += 1
            else:
                rads[band] = _fmt(val, 6)
        # Simulator coding (not the official VNF flag tables):
        # QF_Detect = 1 strong (M07 and M08 present), 2 one of them, 3 neither (M10 + MWIR), +4 if
        # Cloud_Mask; QF_Fit 0 (best) .. 9 grows with missing bands, cloud and a random unit.
        qf_detect = 1 + n_fill + (4 if cloudy else 0)
        qf_fit = int(min(9, 2 * n_fill + (3 if cloudy else 0) + qf_u))
        key = f"SIM_npp_d{t_row:%Y%m%d}_t{t_row:%H%M%S}_{site.site_id}_{len(rows) + 1:03d}"
        rows.append(
            {
                "id_Key": key,
                "Date_Mscan": f"{t_row:%Y/%m/%d %H:%M:%S}.{t_row.microsecond // 1000:03d}",
                "Lat_GMTCO": f"{lat:.5f}",
                "Lon_GMTCO": f"{lon:.5f}",
                "Temp_BB": f"{t_bb:.0f}",
                "Temp_Bkg": f"{t_bkg:.0f}",
                "ESF_BB": _fmt(esf, 5),
                "RHI": f"{rh / area_pixel_km2:.4f}",  # W/m2 = RH*1e6 W / (Area_Pixel*1e6 m2)
                "RH": f"{rh:.4f}",
                "Area_Pixel": f"{area_pixel_km2:.4f}",
                "Area_BB": f"{area_bb:.4f}",
                "Cloud_Mask": "1" if cloudy else "0",
                "QF_Detect": str(qf_detect),
                "QF_Fit": str(qf_fit),
                **{f"Rad_{b}": rads[b] for b in VIIRS_BAND_UM},
            }
        )
        detections.append(
            {
                "id_Key": key,
                "flare_ids": [m[1] for m in members if m[0] == "flare"],
                "fire_ids": [m[1] for m in members if m[0] == "fire"],
                "radiant_heat_mw_true": round(rh_true, 5),
            }
        )
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=VNF_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    truth = {
        "scan_time_utc": scan_time.isoformat(),
        "night_cloud_fraction": round(cf_night, 4),
        "area_pixel_km2": round(area_pixel_km2, 4),
        "detections": detections,
    }
    return buf.getvalue(), truth
