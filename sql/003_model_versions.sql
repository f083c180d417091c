-- Migration 003: model registry (detector, regressor). Artifacts live in S3 under
-- models/<model_name>/v<version>/ ; this table records each version, its metrics and aliases.
CREATE TABLE IF NOT EXISTS model_versions (
    model_name     text NOT NULL,               -- 'detector', 'regressor'
    version        integer NOT NULL CHECK (version > 0),
    s3_prefix      text NOT NULL,               -- s3://<bucket>/models/<name>/v<version>/
    metrics        jsonb NOT NULL DEFAULT '{}'::jsonb,
    params         jsonb NOT NULL DEFAULT '{}'::jsonb,
    data_snapshot  text,                        -- hash of the training data
    library_versions jsonb NOT NULL DEFAULT '{}'::jsonb,
    alias          text,                        -- 'champion' on at most one version per model
    decision       text,                        -- why it was / was not promoted
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_name, version)
);
CREATE UNIQUE INDEX IF NOT EXISTS model_versions_one_alias
    ON model_versions (model_name, alias) WHERE alias IS NOT NULL;
