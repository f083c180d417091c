"""Airflow glue shared by the DAG files: assets, default args, trigger-form params, dates.

Imported at DAG parse time, so it imports only the Airflow SDK and the standard library (and
``flarewatch.sites``, which reads a CSV) at module level; everything heavy is imported inside
the functions tasks call. Nothing here queries a database: the DAG processor parses often.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta

from airflow.sdk import Asset, Param

log = logging.getLogger(__name__)


def _described(name: str, description: str, produced_by: str, consumed_by: str, event_extra: str) -> Asset:
    """An asset with a human description. Airflow 3.3's ``Asset`` has no description field (its
    fields: name, uri, group, extra, watchers, access_control), so it goes in ``extra``, which the
    UI shows on the asset's page."""
    return Asset(name=name, extra={"description": description, "produced_by": produced_by,
                                   "consumed_by": consumed_by, "event_extra": event_extra})


# Assets couple the DAGs: ingest -> process -> rollup -> analytics -> report.
RAW_SCENES = _described(
    "flarewatch_raw_scenes",
    "Sentinel-2 tiles and VIIRS night detections of site-days, fetched into s3://rawdata and recorded in the "
    "scenes table (status ingested / no_data / failed).",
    "flare_ingest", "flare_process",
    "days, site_ids, site_days, scenes per status")
FLARE_EMISSIONS = _described(
    "flarewatch_flare_emissions",
    "Per-flare detections, volumes with 90 % intervals and CO2 / CO2e of processed site-days "
    "(flare_detections, flare_emissions; annotated PNG, GeoJSON and result.json under s3://processed/tiles/).",
    "flare_process", "emissions_rollup",
    "days, site_days, n_detections, volume_kscm_d, co2e_t, reused (done by an earlier try)")
EMISSION_ROLLUPS = _described(
    "flarewatch_emission_rollups",
    "Daily (site x day) and monthly (field / operator / country x month) emission totals "
    "(emissions_daily, emissions_monthly) of audited site-days.",
    "emissions_rollup", "emissions_analytics",
    "days, daily_rows, monthly_rows, audited_site_days, site-days per status")
EMISSION_ANALYTICS = _described(
    "flarewatch_emission_analytics",
    "Gap-aware monthly estimates with 90 % intervals, KPIs, alerts and the reported-vs-observed reconciliation "
    "of whole months.",
    "emissions_analytics", "emissions_report",
    "months, rows written per table, alerts raised and resolved")

START_DATE = datetime(2025, 1, 1)
DAILY_INGEST_CRON = "0 6 * * *"


def ingest_schedule() -> str | None:
    """``flare_ingest``'s schedule: daily at 06:00 UTC for yesterday's acquisition date, unless
    ``FLAREWATCH_INGEST_SCHEDULE`` says otherwise (a cron expression, or ``off`` for manual and
    backfill runs only: the local stack's default, whose demo data is the simulator's June 2025 and
    which would otherwise ingest yesterday's simulated scenes the moment the DAG is unpaused)."""
    value = os.environ.get("FLAREWATCH_INGEST_SCHEDULE", DAILY_INGEST_CRON).strip()
    return None if value.lower() in ("", "off", "none") else value

DEFAULT_ARGS = {
    "owner": "flarewatch",
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
}


# ------------------------------------------------------------------------------------------
# Trigger-form params
# ------------------------------------------------------------------------------------------
def configured_sites() -> dict[str, str]:
    """site_id -> "name (country)" of the sites file the deployment seeds the sites table from
    (``FLAREWATCH_SITES_FILE``, else the packaged demo sites): read at parse time, no database
    query. An unreadable file gives {} (the form then takes free text; the run still checks the
    ids against the sites table)."""
    from flarewatch.sites import load_sites

    try:
        sites = load_sites(os.environ.get("FLAREWATCH_SITES_FILE") or None)
    except (OSError, ValueError) as exc:
        log.warning("site list for the trigger form not read (%s); site_ids takes free text", exc)
        return {}
    return {s.site_id: f"{s.site_id}: {s.name} ({s.country})" for s in sites}


def site_ids_param(description: str) -> Param:
    """``site_ids``: optional (``null`` in the type: the form does not mark it required; empty =
    all sites), offered as a multi-select of the configured sites (``examples``)."""
    sites = configured_sites()
    extra = {"examples": sorted(sites), "values_display": sites} if sites else {}
    return Param(None, type=["null", "array"], items={"type": "string"}, description=description, **extra)


def acquisition_params(one_day: str) -> dict[str, Param]:
    """``acquisition_date`` (one day, kept for existing triggers) and the range
    ``acquisition_start`` / ``acquisition_end`` (named so as not to clash with Airflow's own
    ``start_date`` / ``end_date``); checked when the run starts (``dates.requested_acquisition_dates``)."""
    from flarewatch.orchestration.dates import MAX_ACQUISITION_DAYS

    return {
        "acquisition_date": Param(None, type=["null", "string"], format="date", description=one_day),
        "acquisition_start": Param(None, type=["null", "string"], format="date",
                                   description="Manual runs: first acquisition date of a range (instead of "
                                               f"acquisition_date); at most {MAX_ACQUISITION_DAYS} days."),
        "acquisition_end": Param(None, type=["null", "string"], format="date",
                                 description="Manual runs: last acquisition date of the range (inclusive); "
                                             "empty = acquisition_start."),
    }
