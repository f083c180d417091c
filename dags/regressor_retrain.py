"""
### regressor_retrain: retrain the flared-volume regressor, promote it only if it is better

Weekly (Mon 04:00 UTC) or manual with the Params below. Steps:

1. **train_challenger**: align the calibration periods (`v_calibration_site_periods`: metered or
   reported volumes per site and period) with the processed site-days and the `flare_detections`
   in them (periods below `min_coverage` processed days are dropped, with the reason in the log),
   optionally add `synthetic_sites` simulated sites, hold out a deterministic `test_fraction` of
   the SITES, grid-search the additive per-flare model on site-grouped folds of the training
   sites, score the challenger, the champion and both published calibrations (linear VIIRS,
   RH^0.7 power law) on the same held-out units (MAE, RMSE, R2, bias, 90 % interval coverage),
   and register the challenger as `s3://processed/models/regressor/v<N>/` (`model.skops`,
   `metadata.json` with the data snapshot hash, library versions, metrics) + a `model_versions`
   row. Fails with a clear message when there are too few sites / periods to hold any out.
2. **promote**: the challenger must beat both calibrations (held-out MAE), then must not be worse
   than the champion (registry gate on MAE); the decision is stored on the version row either way.
3. **backfill** (only when promoted and `backfill_start` is set): re-estimate the existing
   detections of `backfill_start`..`backfill_end` with the new champion, upserting
   `flare_emissions` (idempotent; every row records the regressor version that produced it), and
   emit the `flarewatch_flare_emissions` asset so `emissions_rollup` refreshes those days.
"""

from __future__ import annotations

from airflow.sdk import Param, dag

from flarewatch.orchestration.dags import DEFAULT_ARGS, START_DATE
from flarewatch.orchestration.retrain import backfill, retrain_tasks


@dag(
    dag_id="regressor_retrain",
    schedule="0 4 * * 1",
    start_date=START_DATE,
    # Opt-in: created paused, so a fresh deployment (or `make demo`) does not start a CPU-heavy
    # retraining for the latest weekly interval; unpause it in the UI to retrain on schedule.
    is_paused_upon_creation=True,
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "retries": 1},
    tags=["flarewatch", "ml", "regressor"],
    doc_md=__doc__,
    params={
        "test_fraction": Param(0.25, type="number", exclusiveMinimum=0, exclusiveMaximum=1,
                               description="Share of the SITES held out for the evaluation (deterministic)."),
        "min_coverage": Param(0.5, type="number", exclusiveMinimum=0, maximum=1,
                              description="Minimum share of a calibration period's days that must be processed."),
        "synthetic_sites": Param(0, type="integer", minimum=0,
                                 description="Simulated sites added to the calibration data (bootstrap; 0 = none)."),
        "synthetic_days": Param(20, type="integer", minimum=1, description="Days per simulated site."),
        "seed": Param(0, type="integer", minimum=0, description="Seeds the held-out split and the CV folds."),
        "model_kind": Param("constrained", type="string", enum=["constrained", "unconstrained"],
                            description="constrained: linear calibration x a learned correction bounded to [1/B, B]; "
                                        "unconstrained: the free additive regressor."),
        "calibration_start": Param(None, type=["null", "string"], format="date",
                                   description="Use calibration periods starting on or after this day."),
        "calibration_end": Param(None, type=["null", "string"], format="date",
                                 description="Use calibration periods ending on or before this day."),
        "backfill_start": Param(None, type=["null", "string"], format="date",
                                description="If the challenger is promoted: re-estimate detections from this day."),
        "backfill_end": Param(None, type=["null", "string"], format="date",
                              description="Last day to re-estimate (default: backfill_start)."),
    },
)
def regressor_retrain():
    train_challenger, promote = retrain_tasks("regressor")
    backfill(promote(train_challenger()))


regressor_retrain()
