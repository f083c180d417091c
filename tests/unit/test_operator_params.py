"""The trigger forms and the task boundary as an operator meets them: optional site lists offered
from the sites file, acquisition-date ranges checked with a message, errors that cannot heal
failing at once, one readable log line per site-day, no Airflow import-shim warnings from skops."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest

from flarewatch.errors import BadParams, NothingIngested, UnknownSites
from flarewatch.orchestration.dates import MAX_ACQUISITION_DAYS, requested_acquisition_dates
from flarewatch.sites import load_sites

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


@pytest.mark.parametrize("dag_id", ["flare_ingest", "flare_process"])
def test_site_ids_is_optional_and_offers_the_configured_sites(dagbag, dag_id):
    """Airflow 3.3's trigger form (ui/src/components/FlexibleForm) marks a field required when its
    schema has a type that does not include "null", and renders an array with ``examples`` as a
    multi-select of those values."""
    schema = dagbag.dags[dag_id].params.get_param("site_ids").schema
    assert "null" in schema["type"] and "array" in schema["type"]
    demo = sorted(s.site_id for s in load_sites())
    assert schema["examples"] == demo and set(schema["values_display"]) == set(demo)
    params = dagbag.dags[dag_id].params
    for name in ("acquisition_date", "acquisition_start", "acquisition_end"):
        assert params.get_param(name).schema == {**params.get_param(name).schema, "type": ["null", "string"],
                                                 "format": "date"}
    params.validate()  # the defaults validate: nothing is required


def test_the_site_list_follows_the_sites_file(tmp_path, monkeypatch):
    from flarewatch.orchestration.dags import configured_sites, site_ids_param

    f = tmp_path / "sites.csv"
    f.write_text("site_id,name,field,operator,country,lat,lon\nfield-a,Field A,A,Op,Oman,20.0,56.0\n")
    monkeypatch.setenv("FLAREWATCH_SITES_FILE", str(f))
    assert configured_sites() == {"field-a": "field-a: Field A (Oman)"}
    monkeypatch.setenv("FLAREWATCH_SITES_FILE", str(tmp_path / "missing.csv"))
    assert "examples" not in site_ids_param("x").schema  # unreadable: free text, no parse error


def test_acquisition_dates_one_day_or_a_range_with_clear_errors():
    assert requested_acquisition_dates({}) is None
    assert requested_acquisition_dates({"acquisition_date": "2025-06-03"}) == [date(2025, 6, 3)]
    assert requested_acquisition_dates({"acquisition_start": "2025-06-03"}) == [date(2025, 6, 3)]
    days = requested_acquisition_dates({"acquisition_start": "2024-01-01", "acquisition_end": "2024-12-31"})
    assert len(days) == MAX_ACQUISITION_DAYS == 366 and days[-1] == date(2024, 12, 31)
    cases = [
        ({"acquisition_start": "2024-01-01", "acquisition_end": "2025-01-01"}, "367 days"),
        ({"acquisition_start": "2025-06-03", "acquisition_end": "2025-06-01"}, "before acquisition_start"),
        ({"acquisition_end": "2025-06-01"}, "needs acquisition_start"),
        ({"acquisition_date": "2025-06-01", "acquisition_start": "2025-06-01"}, "not both"),
        ({"acquisition_start": "06/01/2025"}, "acquisition_start: expected a date as YYYY-MM-DD"),
    ]
    for params, message in cases:
        with pytest.raises(BadParams, match=message):
            requested_acquisition_dates(params)


def test_errors_that_cannot_heal_fail_at_once_others_are_retried():
    from airflow.sdk.exceptions import AirflowFailException

    from flarewatch.ingest.sources.http import PermanentSourceError
    from flarewatch.orchestration.checks import fails_at_once

    def raising(exc):
        @fails_at_once
        def body():
            raise exc
        return body

    for exc in (BadParams("bad date"), UnknownSites(["rumaila"], ["rumaila-n"]), NothingIngested("no scenes"),
                PermanentSourceError("HTTP 401; check the credentials")):
        with pytest.raises(AirflowFailException, match="not retried"):
            raising(exc)()
    for exc in (OSError("S3 unreachable"), RuntimeError("audit disagreement")):
        with pytest.raises(type(exc)):
            raising(exc)()
    assert str(UnknownSites(["rumaila"], ["rumaila-n", "cantarell"])) == \
        "unknown or inactive site id(s): rumaila; known sites: cantarell, rumaila-n"
    assert isinstance(BadParams("x"), ValueError)  # callers that caught ValueError still do


def test_one_readable_line_per_site_day():
    from flarewatch.process.site_day import summary_line

    result = {"site_id": "rumaila-n", "acquisition_date": "2025-06-03", "n_detections": 4, "n_sentinel2": 3,
              "n_viirs_only": 1, "volume_kscm_d": 812.41, "volume_lo_kscm_d": 610.2, "volume_hi_kscm_d": 1010.94,
              "co2e_t": 1587.23, "detector_version": "yolo-shipped-1+physics-v3",
              "volume_model_version": "regressor-v2"}
    assert summary_line(result) == (
        "rumaila-n 2025-06-03: 4 flare(s) (3 Sentinel-2, 1 VIIRS-only), volume 812.4 kscm/d [90 % 610.2-1,010.9], "
        "CO2e 1,587.2 t; detector yolo-shipped-1+physics-v3, volume model regressor-v2")
    quiet = summary_line({**result, "n_detections": 0, "n_sentinel2": 0, "n_viirs_only": 0},
                         {"sentinel2": ("quarantined", "wrong_crs", "EPSG:4326,\n expected EPSG:32638")})
    assert quiet.endswith("; Sentinel-2 not used, quarantined (wrong_crs: EPSG:4326, expected EPSG:32638)")


def test_loading_the_regressor_in_an_airflow_worker_does_not_flood_the_log():
    """skops' first import looks ~230 scipy ufunc names up in every loaded module; Airflow's
    deprecated-import shims answer each with a DeprecatedImportWarning (1,160 of them)."""
    code = textwrap.dedent("""
        import warnings
        import airflow.sdk, airflow.utils.timezone, airflow.utils.trigger_rule  # as in a task
        from flarewatch.estimate.deployed import load_shipped_regressor
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            {load}
        print("AIRFLOW_WARNINGS=%d" % sum("airflow" in str(w.message) for w in seen))
    """)
    env_path = str(REPO / "include")

    def count(load: str) -> int:
        out = subprocess.run([sys.executable, "-c", code.format(load=load)], capture_output=True, text=True,
                             timeout=300, env={**__import__("os").environ, "PYTHONPATH": env_path})
        assert "AIRFLOW_WARNINGS=" in out.stdout, out.stderr[-2000:]
        return int(out.stdout.split("AIRFLOW_WARNINGS=")[-1])

    assert count("import skops.io") > 100  # the cause, still there upstream
    assert count("load_shipped_regressor()") == 0
