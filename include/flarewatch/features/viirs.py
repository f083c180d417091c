"""The VIIRS features of a detection: the matched Nightfire detection of its night
(``viirs_features``), the nights of the window that saw it (``viirs_nights_seen``), and one VNF
row's radiant heat shared between the Sentinel-2 detections that matched it
(``share_viirs_radiant_heat``). ``features.extract`` uses them (and re-exports them).

``viirs_features_at`` / ``viirs_nights_seen_at``: the same values from each night's rows prepared
once (``ingest.viirs.VnfPoints``), for the many detections of a site-day (issue 14).
"""

from __future__ import annotations

import math

import pandas as pd

from flarewatch.config import VIIRS_FLARE_MIN_TEMP_K, VIIRS_MATCH_RADIUS_M
from flarewatch.ingest.viirs import VnfPoints, flare_like, match_viirs
from flarewatch.values import finite_or_none


def viirs_features(
    lat: float, lon: float, viirs_flares: pd.DataFrame | None, min_temp_k: float = VIIRS_FLARE_MIN_TEMP_K
) -> dict:
    """The ``viirs_*`` features for a centroid: nearest flare-like VNF detection within 750 m.

    ``flare_like`` is applied here (idempotent), so raw parsed VNF rows may be passed. The nearest
    detection's values are used, not a sum: several rows near one flare on one night are usually
    the same flare seen in overlapping scans, and summing would double-count it.
    """
    out = {"viirs_n": 0, "viirs_id": None, "viirs_rh_mw": None, "viirs_temp_k": None, "viirs_area_m2": None}
    out["viirs_distance_m"] = None
    if viirs_flares is None or len(viirs_flares) == 0:
        return out
    matched = match_viirs(lat, lon, flare_like(viirs_flares, min_temp_k))
    if len(matched) == 0:
        return out
    nearest = matched.iloc[0]
    out.update(
        viirs_n=int(len(matched)),
        viirs_id=None if pd.isna(nearest["id_Key"]) else str(nearest["id_Key"]),
        viirs_rh_mw=finite_or_none(nearest["RH"]),
        viirs_temp_k=finite_or_none(nearest["Temp_BB"]),
        viirs_area_m2=finite_or_none(nearest["Area_BB"]),
        viirs_distance_m=finite_or_none(nearest["distance_m"]),
    )
    return out


def viirs_features_at(lat: float, lon: float, points: VnfPoints | None) -> dict:
    """``viirs_features`` on rows prepared once (``ingest.viirs.VnfPoints`` with the same ``min_temp_k``):
    the same values, without copying and converting the frame for every detection."""
    out = {"viirs_n": 0, "viirs_id": None, "viirs_rh_mw": None, "viirs_temp_k": None, "viirs_area_m2": None}
    out["viirs_distance_m"] = None
    if points is None or len(points) == 0:
        return out
    pos, dist = points.match(lat, lon)
    if len(pos) == 0:
        return out
    j, f = int(pos[0]), points.frame
    vid = f["id_Key"].iloc[j]
    out.update(
        viirs_n=int(len(pos)),
        viirs_id=None if pd.isna(vid) else str(vid),
        viirs_rh_mw=finite_or_none(f["RH"].iloc[j]),
        viirs_temp_k=finite_or_none(f["Temp_BB"].iloc[j]),
        viirs_area_m2=finite_or_none(f["Area_BB"].iloc[j]),
        viirs_distance_m=finite_or_none(dist[0]),
    )
    return out


def viirs_nights_seen_at(lat: float, lon: float, nights: list[VnfPoints | None],
                         radius_m: float = VIIRS_MATCH_RADIUS_M) -> int:
    """``viirs_nights_seen`` on nights prepared once (``ingest.viirs.VnfPoints`` of each night with the
    ``flare_like`` cut): the same count."""
    if lat is None or lon is None or not (math.isfinite(lat) and math.isfinite(lon)):
        return 0
    return sum(1 for night in nights if night is not None and len(night)
               and night.any_within(float(lat), float(lon), radius_m))


def viirs_nights_seen(
    lat: float, lon: float, nights: list[pd.DataFrame | None], min_temp_k: float = VIIRS_FLARE_MIN_TEMP_K,
    radius_m: float = VIIRS_MATCH_RADIUS_M,
) -> int:
    """Number of ``nights`` with a flare-like VNF detection within ``radius_m`` (m) of (lat, lon).

    ``nights``: one parsed VNF DataFrame (``ingest.viirs.parse_vnf_csv``, filtered by ``flare_like`` or
    not: it is applied here with ``min_temp_k``) per distinct night of the window (the caller
    passes the current night and the ``VIIRS_NIGHTS_WINDOW - 1`` before it); ``None`` (a night not
    ingested, not observed or unreadable) counts as a night without a match. Several rows near the
    flare on one night count once. Pure: no I/O.
    """
    if lat is None or lon is None or not (math.isfinite(lat) and math.isfinite(lon)):
        return 0
    seen = 0
    for night in nights:
        if night is None or len(night) == 0:
            continue
        if len(match_viirs(float(lat), float(lon), flare_like(night, min_temp_k), radius_m)):
            seen += 1
    return seen


def share_viirs_radiant_heat(features_list: list[dict]) -> list[dict]:
    """Split a VIIRS detection's RH between the Sentinel-2 detections that matched it.

    VIIRS pixels are ~750 m: stacks a few 20 m pixels apart are one VNF row, and every S2
    detection within ``VIIRS_MATCH_RADIUS_M`` of it would otherwise carry the full ``viirs_rh_mw``
    (double counting the volume). For each ``viirs_id`` shared by k > 1 dicts, ``viirs_rh_mw`` and
    ``viirs_area_m2`` are scaled by the detection's share of the group's ``swir_frp_mw`` (equal
    shares when an FRP is missing or zero); ``viirs_share`` (0..1) records the factor (1.0 for an
    unshared match, None without one). Returns new dicts; the inputs are not modified.
    """
    out = [dict(f) for f in features_list]
    groups: dict[str, list[int]] = {}
    for i, f in enumerate(out):
        f["viirs_share"] = None
        if f.get("viirs_id") is not None and f.get("viirs_rh_mw") is not None:
            groups.setdefault(f["viirs_id"], []).append(i)
    for members in groups.values():
        frp = [out[i].get("swir_frp_mw") for i in members]
        if all(isinstance(x, (int, float)) and math.isfinite(x) and x > 0 for x in frp):
            total = float(sum(frp))
            shares = [x / total for x in frp]
        else:
            shares = [1.0 / len(members)] * len(members)
        for i, share in zip(members, shares):
            f = out[i]
            f["viirs_share"] = share
            f["viirs_rh_mw"] = f["viirs_rh_mw"] * share
            if f.get("viirs_area_m2") is not None:
                f["viirs_area_m2"] = f["viirs_area_m2"] * share
    return out
