"""
### detector_retrain: fine-tune the YOLO flare detector and promote it only if it is not worse

Manual trigger (Params below) or weekly. Steps:

1. **train_challenger**: build the simulator training set (sites disjoint between train / val /
   test), merge real labelled chips found under `s3://processed/training/chips/` (ultralytics
   layout), fine-tune from the current champion (registry alias `champion`, else the weights
   shipped in `models/detector/`), evaluate challenger and champion on the same held-out test
   tiles (F1, match = centres within 2 px), and register the challenger as
   `s3://processed/models/detector/v<N>/` + a `model_versions` row.
2. **promote**: the promotion gate moves the `champion` alias only if the challenger's F1 is not
   lower than the champion's; the decision is stored on the version row either way.
"""

from __future__ import annotations

from airflow.sdk import Param, dag

from flarewatch.orchestration.dags import DEFAULT_ARGS, START_DATE
from flarewatch.orchestration.retrain import retrain_tasks


@dag(
    dag_id="detector_retrain",
    schedule="0 3 * * 0",
    start_date=START_DATE,
    # Opt-in: created paused, so a fresh deployment (or `make demo`) does not start a CPU-heavy
    # retraining for the latest weekly interval; unpause it in the UI to retrain on schedule.
    is_paused_upon_creation=True,
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "retries": 1},
    tags=["flarewatch", "ml", "detector"],
    doc_md=__doc__,
    params={
        "epochs": Param(10, type="integer", minimum=1, maximum=300, description="Fine-tuning epochs."),
        "train_sites": Param(24, type="integer", minimum=1, description="Synthetic training sites."),
        "eval_sites": Param(6, type="integer", minimum=1, description="Synthetic validation and test sites each."),
        "days_per_site": Param(6, type="integer", minimum=1, description="Scenes per synthetic site."),
        "chips_prefix": Param("training/chips/", type="string",
                              description="Prefix in the processed bucket with real labelled chips to merge."),
    },
)
def detector_retrain():
    train_challenger, promote = retrain_tasks("detector")
    promote(train_challenger())


detector_retrain()
