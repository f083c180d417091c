"""Configuration: every literature constant lives here with its source, plus deployment settings.

Deployment settings come from environment variables (``FLAREWATCH_*``); the Airflow connections
for S3 and Postgres are named by ``FLAREWATCH_S3_CONN_ID`` / ``FLAREWATCH_DB_CONN_ID``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# --------------------------------------------------------------------------------------------
# Physical constants
# --------------------------------------------------------------------------------------------
STEFAN_BOLTZMANN = 5.670374419e-8  # W m-2 K-4 (CODATA 2018)
PLANCK_C1 = 1.191042972e-16  # 2 h c^2, W m2 sr-1 (CODATA 2018)
PLANCK_C2 = 1.438776877e-2  # h c / k, m K (CODATA 2018)
MCF_TO_M3 = 28.316846592  # 1 thousand cubic feet = 28.317 m3 (domain.md, "Units")

# --------------------------------------------------------------------------------------------
# Sentinel-2 MSI
# --------------------------------------------------------------------------------------------
# Central wavelengths (um) and solar irradiance E_sun (W m-2 um-1) of the 20 m bands, Sentinel-2A
# MSI spectral response / L1C metadata (ESA Sentinel-2 User Handbook, SOLAR_IRRADIANCE tags): the
# simulator's (Sentinel-2A-like) constants and the defaults of the physics functions. A tile's own
# constants are those of its spacecraft (S2_SPACECRAFT_CONSTANTS, ``tiles.Tile.wavelength_um``).
# B8A 0.8648 is the simulator's value since the first release; the SRF document v3.0 gives 0.8647
# (below). B8A's centre enters no retrieval (NHI uses E_sun, the colour temperature B11/B12 only).
S2_BANDS = ("B8A", "B11", "B12")
S2_WAVELENGTH_UM = {"B8A": 0.8648, "B11": 1.6137, "B12": 2.2024}
S2_SOLAR_IRRADIANCE = {"B8A": 955.19, "B11": 245.59, "B12": 85.25}
# Per-spacecraft constants (domain.md, "Per-spacecraft constants (Sentinel-2A / 2B)"):
# band centres (um): S2 spectral response document COPE-GSEG-EOPG-TN-15-0007 v3.0, as in product
# metadata; E_sun (W m-2 um-1): MTD_MSIL1C.xml Solar_Irradiance_List. Using 2A's constants on a 2B
# scene biases the B12/B11 colour temperature by tens of kelvin. Sentinel-2C (and any other
# spacecraft) has no entry on purpose: domain.md says read its product metadata, do not assume
# 2A's, so its tiles must carry per-band ``central_wavelength_um`` / ``solar_irradiance`` tags.
S2_SPACECRAFT_CONSTANTS = {
    "Sentinel-2A": {
        "wavelength_um": {"B8A": 0.8647, "B11": 1.6137, "B12": 2.2024},
        "solar_irradiance": {"B8A": 955.19, "B11": 245.59, "B12": 85.25},
    },
    "Sentinel-2B": {
        "wavelength_um": {"B8A": 0.8640, "B11": 1.6104, "B12": 2.1857},
        "solar_irradiance": {"B8A": 953.93, "B11": 247.08, "B12": 87.75},
    },
}
# Tiles that name no spacecraft: only our own encode_tile wrote such files (before it wrote the
# SPACECRAFT tag); the simulator is Sentinel-2A-like.
S2_DEFAULT_SPACECRAFT = "Sentinel-2A"
S2_PIXEL_M = 20.0
# DN -> reflectance: rho = DN * scale + offset; offset -0.1 since processing baseline 04.00
# (Jan 2022); read the real values from STAC raster:bands (domain.md, Sentinel-2 section).
S2_REFLECTANCE_SCALE = 0.0001
S2_REFLECTANCE_OFFSET = -0.1
S2_NODATA_DN = 0

# --------------------------------------------------------------------------------------------
# Threshold detector (the physics baseline)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ThresholdDetectorConfig:
    """TAI and NHI rules. Sources (domain.md):
    - TAI = (rho12 - rho11) / rho8A; hot if TAI >= 0.15 and rho12 >= 0.15; saturated rule
      rho12 > 1 and rho11 > rho12 (Marchese et al., as in the open FlareSat comparison code).
    - NHI_SWIR = (L12-L11)/(L12+L11) > 0 or NHI_SWNIR = (L11-L8A)/(L11+L8A) > 0 on TOA radiance
      (Marchese et al. 2019 NHI, used by DAFI: Faruolo et al. 2022, Remote Sensing 14(24):6319).
      A pixel is hot if either index is positive: with "and", no unsaturated flame hotter than
      ~1500 K could pass (it is brighter in radiance at 1.6 um than at 2.2 um).
    - Glint/bright-roof rejection: flames have B12/B11 > ~1.3, glint ~1.0 (domain.md).
    """

    tai_min: float = 0.15
    rho12_min: float = 0.15
    saturated_rho12: float = 1.0
    min_b12_b11_ratio: float = 1.3  # flames > ~1.3, glint/roofs ~1.0 (domain.md)
    contrast_min: float = 3.0  # B12 >= 3x the local background median (open S2 flare mappers)
    require_nhi: bool = True
    background_window_px: int = 15


# --------------------------------------------------------------------------------------------
# VIIRS Nightfire
# --------------------------------------------------------------------------------------------
VNF_FILL_VALUE = 999999  # VNF CSV fill value (domain.md, VIIRS Nightfire)
VIIRS_FLARE_MIN_TEMP_K = 1200.0  # flares >= 1200 K, biomass fires 800-1200 K (Elvidge et al. 2013; Zhizhin 2021)
# Sentinel-2 colour temperature below which a hot spot is taken as a fire, not a flame: flares burn at
# ~1600-2000 K, biomass fires at ~800-1200 K (Elvidge et al. 2013, Remote Sensing 5(9):4423; domain.md).
FLAME_MIN_TEMP_K = 1200.0
# Above this the B12/B11 colour of a hot spot is too flat for a flame (flames ~1600-2000 K, domain.md): sun
# glint and bright roofs (reflectance ratio ~1.0; flames > ~1.3, domain.md) read as > 3500 K. 3000 K
# (reflectance-excess ratio ~1.44) leaves room for noise on small flames.
FLAME_MAX_TEMP_K = 3000.0
VIIRS_MATCH_RADIUS_M = 750.0  # one VIIRS M-band pixel (750 m nadir); match S2 flare <-> VNF detection


# --------------------------------------------------------------------------------------------
# Radiant heat -> flared volume calibrations
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VolumeCalibration:
    """Published VIIRS radiant-heat calibrations (domain.md, "From radiant heat to flared volume").

    - ``linear``: Zhizhin et al. 2025, Energies 18(17):4765 (reported, unverified):
      BCM/yr = 0.0115 * RH[MW]  -> 0.0115e9 / 365 / 1e3 = 31.5 thousand m3/day per MW.
    - ``power``: Elvidge et al. 2016, Energies 9(1):14, EOG annual files 2017-2024:
      BCM/yr = 0.029353 * RH', RH' = sigma T^4 S^0.7 [MW], S in m2, only T >= 1200 K.
    """

    method: str = "linear"
    linear_bcm_per_year_per_mw: float = 0.0115
    power_slope_bcm_per_year: float = 0.029353
    power_exponent: float = 0.7
    min_temperature_k: float = VIIRS_FLARE_MIN_TEMP_K


# --------------------------------------------------------------------------------------------
# Emission factors
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EmissionFactors:
    """Volume -> CO2 / CO2e (domain.md, "From volume to CO2").

    - co2_t_per_kscm: 1.935 t CO2 per 1000 m3 flared (= 0.0548 t CO2/Mcf, default of open
      flaring monitors); applied at full combustion.
    - combustion_efficiency: 0.98 (World Bank GGFR assumption); measured ~0.91 in US basins
      (Plant et al. 2022, Science 377:1566).
    - methane_fraction_vol: 0.80 associated-gas CH4 mole fraction (typical associated gas; assumption,
      make it site-specific when composition is known).
    - methane_density_kg_m3: 0.678 kg/m3 at 15 C, 1 atm (ideal gas, M = 16.04 g/mol).
    - methane_gwp: 30 (World Bank GGFR convention, domain.md).
    """

    co2_t_per_kscm: float = 1.935
    combustion_efficiency: float = 0.98
    methane_fraction_vol: float = 0.80
    methane_density_kg_m3: float = 0.678
    methane_gwp: float = 30.0


@dataclass(frozen=True)
class AnalyticsConfig:
    """Settings of the analytics layer (``flarewatch.analytics``; README "For environmental staff").

    CO2e scenarios: ``EmissionFactors.combustion_efficiency`` (0.98, World Bank GGFR) is the
    default; ``measured_combustion_efficiency`` 0.91 is the effective destruction efficiency
    measured for real flares, unlit and malfunctioning ones included (Plant et al. 2022, Science
    377:1566; domain.md "From volume to CO2"). Both are reported side by side.

    Gap filling (``analytics.gapfill``): an unobserved day takes the mean of the nearest observed
    day before and after it within ``gapfill_max_days`` (one side only at the edges); without one
    the site's observed mean of the month. Product choices, not literature values.

    Alert rules (``analytics.alerts``): ``alert_volume_kscm_d`` a site-day above this volume
    (thousand m3/day; 1000 = ~35 MMcf/d, a very large flare); ``consecutive_flaring_days`` flaring
    on more than N consecutive days (regulators use windows such as 10, 45 or 180 days);
    ``new_site_quiet_days`` a flare after at least this many observed days without one;
    anomalies: robust z of log(1 + volume) (median / 1.4826 MAD of the site's previous
    ``anomaly_window_days`` observed days, at least ``anomaly_min_baseline`` of them) beyond
    ``anomaly_robust_z``, and a local outlier factor (scikit-learn, novelty mode) per site over
    volume, flares, temperature and FRP fitted on the days before the month, with
    ``anomaly_contamination``.
    Chosen on simulated series with injected events (``make evaluate``, key ``anomalies``).
    """

    measured_combustion_efficiency: float = 0.91
    gapfill_max_days: int = 15
    alert_volume_kscm_d: float = 1000.0
    consecutive_flaring_days: int = 10
    new_site_quiet_days: int = 7
    anomaly_window_days: int = 30
    anomaly_min_baseline: int = 7
    anomaly_robust_z: float = 3.5
    anomaly_contamination: float = 0.01

    @classmethod
    def from_env(cls, env: dict[str, str]) -> AnalyticsConfig:
        cfg = cls(
            measured_combustion_efficiency=float(env.get("FLAREWATCH_MEASURED_COMBUSTION_EFFICIENCY",
                                                         cls.measured_combustion_efficiency)),
            gapfill_max_days=int(env.get("FLAREWATCH_GAPFILL_MAX_DAYS", cls.gapfill_max_days)),
            alert_volume_kscm_d=float(env.get("FLAREWATCH_ALERT_VOLUME_KSCM_D", cls.alert_volume_kscm_d)),
            consecutive_flaring_days=int(env.get("FLAREWATCH_ALERT_CONSECUTIVE_DAYS", cls.consecutive_flaring_days)),
            new_site_quiet_days=int(env.get("FLAREWATCH_ALERT_NEW_SITE_QUIET_DAYS", cls.new_site_quiet_days)),
            anomaly_robust_z=float(env.get("FLAREWATCH_ANOMALY_ROBUST_Z", cls.anomaly_robust_z)),
        )
        if not 0.0 < cfg.measured_combustion_efficiency <= 1.0:
            raise ValueError("FLAREWATCH_MEASURED_COMBUSTION_EFFICIENCY must be in (0, 1], got "
                             f"{cfg.measured_combustion_efficiency}")
        for name, value in (("FLAREWATCH_GAPFILL_MAX_DAYS", cfg.gapfill_max_days),
                            ("FLAREWATCH_ALERT_CONSECUTIVE_DAYS", cfg.consecutive_flaring_days),
                            ("FLAREWATCH_ALERT_NEW_SITE_QUIET_DAYS", cfg.new_site_quiet_days)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if cfg.alert_volume_kscm_d <= 0 or cfg.anomaly_robust_z <= 0:
            raise ValueError("FLAREWATCH_ALERT_VOLUME_KSCM_D and FLAREWATCH_ANOMALY_ROBUST_Z must be > 0")
        return cfg


# --------------------------------------------------------------------------------------------
# Real data sources (README "Real data sources")
# --------------------------------------------------------------------------------------------
S2_SOURCES = ("demo", "earth-search", "sentinel-hub")
VIIRS_SOURCES = ("demo", "firms", "nightfire")
# NASA FIRMS area API (domain.md): VIIRS 375 m active-fire products, <= 5 days per request,
# 5000 transactions per 10 minutes per MAP_KEY (a multi-day request counts several).
FIRMS_VIIRS_SOURCES = ("VIIRS_SNPP_NRT", "VIIRS_NOAA20_NRT", "VIIRS_NOAA21_NRT", "VIIRS_SNPP_SP", "VIIRS_NOAA20_SP")
FIRMS_MAX_DAY_RANGE = 5
FIRMS_TRANSACTIONS_PER_10_MIN = 5000


def _csv_tuple(value: str | None, default: tuple) -> tuple:
    if value is None or not value.strip():
        return default
    return tuple(v.strip() for v in value.split(",") if v.strip())


@dataclass(frozen=True)
class SourceSettings:
    """Settings of the real providers (``FLAREWATCH_*`` environment variables; README).

    Credentials never live here: they come from Airflow connections, read only when a source is
    used (``firms_conn_id``: MAP_KEY in the password; ``vnf_conn_id``: bearer token in the password,
    or login/password + ``extra.token_url`` for an OAuth password grant).
    """

    http_retries: int = 5  # retries on 429/5xx/timeouts (urllib3 Retry), exponential backoff
    http_backoff_s: float = 1.0
    http_timeout_s: float = 60.0
    firms_conn_id: str = "flarewatch_firms"
    firms_url: str = "https://firms.modaps.eosdis.nasa.gov"
    firms_sources: tuple = ("VIIRS_SNPP_NRT", "VIIRS_NOAA20_NRT", "VIIRS_NOAA21_NRT")
    firms_min_confidence: str = "n"  # VIIRS confidence l < n < h; rows below are dropped
    firms_limit_wait_s: float = 60.0  # wait after "Exceeding allowed transaction limit", doubling
    firms_limit_retries: int = 3
    vnf_url_template: str = ""  # https://.../VNF_npp_d{yyyymmdd}_noaa_v30-ez.csv.gz or s3://bucket/...
    vnf_conn_id: str = "flarewatch_vnf"
    vnf_s3_conn_id: str = ""  # Airflow AWS connection for s3:// templates ("" = FLAREWATCH_S3_CONN_ID)
    vnf_qf_fit_exclude: tuple = ()  # QF_Fit values to drop (site-specific; domain.md gives no table)
    vnf_qf_detect_exclude: tuple = ()  # QF_Detect values to drop
    # Sentinel-2 providers (sources.earth_search, sources.sentinel_hub); "" / None = their defaults.
    earth_search_url: str = ""  # default https://earth-search.aws.element84.com/v1
    earth_search_collection: str = ""  # default sentinel-2-c1-l2a
    s2_max_cloud: float | None = None  # highest granule cloud cover read (percent); default 80
    sentinel_hub_conn_id: str = "flarewatch_sentinelhub"

    @classmethod
    def from_env(cls, env: dict[str, str]) -> SourceSettings:
        def num(name: str, default, kind=float):
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise ValueError(f"{name} must be a number, got {raw!r}") from None
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {raw!r}")
            return value

        firms_sources = _csv_tuple(env.get("FLAREWATCH_FIRMS_SOURCES"), cls.firms_sources)
        unknown = [x for x in firms_sources if x not in FIRMS_VIIRS_SOURCES]
        if unknown or not firms_sources:
            raise ValueError(f"FLAREWATCH_FIRMS_SOURCES: unknown {unknown}; known: {list(FIRMS_VIIRS_SOURCES)}")
        conf = env.get("FLAREWATCH_FIRMS_MIN_CONFIDENCE", cls.firms_min_confidence).strip().lower()
        if conf not in ("l", "n", "h"):
            raise ValueError(f"FLAREWATCH_FIRMS_MIN_CONFIDENCE must be l, n or h, got {conf!r}")
        template = env.get("FLAREWATCH_VNF_URL_TEMPLATE", "").strip()
        if template and not template.startswith(("http://", "https://", "s3://")):
            raise ValueError(f"FLAREWATCH_VNF_URL_TEMPLATE must start with https://, http:// or s3://, got {template!r}")

        def ints(name: str) -> tuple:
            try:
                return tuple(int(v) for v in _csv_tuple(env.get(name), ()))
            except ValueError:
                raise ValueError(f"{name} must be a comma-separated list of integers, got {env.get(name)!r}") from None

        return cls(
            http_retries=num("FLAREWATCH_HTTP_RETRIES", cls.http_retries, int),
            http_backoff_s=num("FLAREWATCH_HTTP_BACKOFF_S", cls.http_backoff_s),
            http_timeout_s=num("FLAREWATCH_HTTP_TIMEOUT_S", cls.http_timeout_s),
            firms_conn_id=env.get("FLAREWATCH_FIRMS_CONN_ID", cls.firms_conn_id),
            firms_url=env.get("FLAREWATCH_FIRMS_URL", cls.firms_url).rstrip("/"),
            firms_sources=firms_sources,
            firms_min_confidence=conf,
            firms_limit_wait_s=num("FLAREWATCH_FIRMS_LIMIT_WAIT_S", cls.firms_limit_wait_s),
            firms_limit_retries=num("FLAREWATCH_FIRMS_LIMIT_RETRIES", cls.firms_limit_retries, int),
            vnf_url_template=template,
            vnf_conn_id=env.get("FLAREWATCH_VNF_CONN_ID", cls.vnf_conn_id),
            vnf_s3_conn_id=env.get("FLAREWATCH_VNF_S3_CONN_ID", cls.vnf_s3_conn_id),
            vnf_qf_fit_exclude=ints("FLAREWATCH_VNF_QF_FIT_EXCLUDE"),
            vnf_qf_detect_exclude=ints("FLAREWATCH_VNF_QF_DETECT_EXCLUDE"),
            earth_search_url=env.get("FLAREWATCH_EARTH_SEARCH_URL", "").strip(),
            earth_search_collection=env.get("FLAREWATCH_EARTH_SEARCH_COLLECTION", "").strip(),
            s2_max_cloud=num("FLAREWATCH_S2_MAX_CLOUD", None),
            sentinel_hub_conn_id=env.get("FLAREWATCH_SENTINEL_HUB_CONN_ID", cls.sentinel_hub_conn_id),
        )


@dataclass(frozen=True)
class TileLimits:
    """What a Sentinel-2 tile must be before processing uses it (``validate.tile``); product
    choices, not literature values. Environment: ``FLAREWATCH_MAX_TILE_PIXELS``,
    ``FLAREWATCH_MIN_VALID_FRACTION``, ``FLAREWATCH_MIN_SITE_COVERAGE``.

    ``max_pixels``: a tile's width x height, checked from the header before any pixel is decoded
    (4096 x 4096 = a 82 km AOI at 20 m; a 5 km site is 250 x 250). Processing a tile adds 58 bytes
    per pixel of Python/NumPy allocations at its peak, 73 bytes of RSS (``make bench-memory``:
    uint16 bands, float32 reflectances, the detector's work arrays), so the default bounds a task
    near 1.2 GB above the ~1 GB its libraries and models take. ``min_valid_fraction``: share of the site's AOI with data
    in every band; below it the tile cannot speak for the site and the day is not observed by
    Sentinel-2 (an all-nodata tile is 0). ``min_site_coverage``: share of the site's AOI that the
    tile's footprint must cover; less means a tile of another place (quarantined).
    """

    max_pixels: int = 4096 * 4096
    min_valid_fraction: float = 0.5
    min_site_coverage: float = 0.9

    @classmethod
    def from_env(cls, env: dict[str, str]) -> TileLimits:
        limits = cls(
            max_pixels=int(env.get("FLAREWATCH_MAX_TILE_PIXELS", cls.max_pixels)),
            min_valid_fraction=float(env.get("FLAREWATCH_MIN_VALID_FRACTION", cls.min_valid_fraction)),
            min_site_coverage=float(env.get("FLAREWATCH_MIN_SITE_COVERAGE", cls.min_site_coverage)),
        )
        if limits.max_pixels < 1:
            raise ValueError(f"FLAREWATCH_MAX_TILE_PIXELS must be >= 1, got {limits.max_pixels}")
        for name, value in (("FLAREWATCH_MIN_VALID_FRACTION", limits.min_valid_fraction),
                            ("FLAREWATCH_MIN_SITE_COVERAGE", limits.min_site_coverage)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        return limits


def state_dir() -> Path:
    """The folder for model caches, exports and retraining work: ``FLAREWATCH_STATE_DIR`` (the local
    stack sets it to ``<repo>/.state``), else ``<tmp>/flarewatch``."""
    import tempfile

    return Path(os.environ.get("FLAREWATCH_STATE_DIR") or Path(tempfile.gettempdir()) / "flarewatch")


# --------------------------------------------------------------------------------------------
# Deployment settings
# --------------------------------------------------------------------------------------------
def _batch_cap(env: dict[str, str], name: str) -> int:
    raw = env.get(name, "").strip() or "0"
    if not raw.isdigit():
        raise ValueError(f"{name} must be a whole number >= 0 (0 = sized from costs), got {raw!r}")
    return int(raw)


@dataclass(frozen=True)
class Settings:
    s3_conn_id: str = "flarewatch_s3"
    db_conn_id: str = "flarewatch_db"
    raw_bucket: str = "rawdata"
    processed_bucket: str = "processed"
    scene_source: str = "demo"
    s2_source: str = "demo"  # deployment default; a site's sites.s2_source overrides it
    viirs_source: str = "demo"  # deployment default; a site's sites.viirs_source overrides it
    sources: SourceSettings = field(default_factory=SourceSettings)
    detector_kind: str = "yolo"  # "yolo" (registry champion, else shipped weights) or "threshold"
    # at most this many site-days per flare_ingest / flare_process task; 0 = batches sized from costs
    # (orchestration.batching: one task for a daily run, about one per task slot for a long range)
    ingest_batch: int = 0
    process_batch: int = 0
    volume_model: str = "regressor"  # "regressor" (registry champion, else shipped) or "calibration" (baseline)
    detector_runtime: str = "auto"  # YOLO runtime: auto (OpenVINO > ONNX Runtime > PyTorch), torch, onnx, openvino
    physics_check: bool = True  # YOLO proposals verified by physics (detect.verified); FLAREWATCH_PHYSICS_CHECK=off
    sites_file: str | None = None
    tile_limits: TileLimits = field(default_factory=TileLimits)
    # failed processing attempts of one site-day before it is marked failed and leaves the pending
    # set until re-queued (``flarewatch requeue``); FLAREWATCH_MAX_PROCESS_ATTEMPTS
    max_process_attempts: int = 3
    detector: ThresholdDetectorConfig = field(default_factory=ThresholdDetectorConfig)
    calibration: VolumeCalibration = field(default_factory=VolumeCalibration)
    emission_factors: EmissionFactors = field(default_factory=EmissionFactors)
    analytics: AnalyticsConfig = field(default_factory=AnalyticsConfig)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        cal = VolumeCalibration(method=env.get("FLAREWATCH_VOLUME_METHOD", "linear"))
        detector_kind = env.get("FLAREWATCH_DETECTOR", "yolo")
        if detector_kind not in ("yolo", "threshold"):
            raise ValueError(f"FLAREWATCH_DETECTOR must be 'yolo' or 'threshold', got {detector_kind!r}")
        volume_model = env.get("FLAREWATCH_VOLUME_MODEL", "regressor")
        if volume_model not in ("regressor", "calibration"):
            raise ValueError(f"FLAREWATCH_VOLUME_MODEL must be 'regressor' or 'calibration', got {volume_model!r}")
        physics_check = env.get("FLAREWATCH_PHYSICS_CHECK", "on").strip().lower()
        if physics_check not in ("on", "off"):
            raise ValueError(f"FLAREWATCH_PHYSICS_CHECK must be 'on' or 'off', got {physics_check!r}")
        detector_runtime = env.get("FLAREWATCH_DETECTOR_RUNTIME", "auto")
        if detector_runtime not in ("auto", "torch", "onnx", "openvino"):
            raise ValueError("FLAREWATCH_DETECTOR_RUNTIME must be one of auto, torch, onnx, openvino, "
                             f"got {detector_runtime!r}")
        # FLAREWATCH_SCENE_SOURCE=demo (the default) keeps meaning "demo for both sensors";
        # FLAREWATCH_S2_SOURCE / FLAREWATCH_VIIRS_SOURCE pick each sensor's provider.
        scene_source = env.get("FLAREWATCH_SCENE_SOURCE", cls.scene_source).strip() or cls.scene_source
        if scene_source not in ("demo", "composite"):
            raise ValueError(f"FLAREWATCH_SCENE_SOURCE must be 'demo' (or 'composite'), got {scene_source!r}; "
                             "pick real providers with FLAREWATCH_S2_SOURCE and FLAREWATCH_VIIRS_SOURCE")
        s2_source = env.get("FLAREWATCH_S2_SOURCE", "").strip() or cls.s2_source
        viirs_source = env.get("FLAREWATCH_VIIRS_SOURCE", "").strip() or cls.viirs_source
        if s2_source not in S2_SOURCES:
            raise ValueError(f"FLAREWATCH_S2_SOURCE must be one of {list(S2_SOURCES)}, got {s2_source!r}")
        if viirs_source not in VIIRS_SOURCES:
            raise ValueError(f"FLAREWATCH_VIIRS_SOURCE must be one of {list(VIIRS_SOURCES)}, got {viirs_source!r}")
        if cal.method not in ("linear", "power"):
            raise ValueError(f"FLAREWATCH_VOLUME_METHOD must be 'linear' or 'power', got {cal.method!r}")
        ef = EmissionFactors(
            co2_t_per_kscm=float(env.get("FLAREWATCH_CO2_T_PER_KSCM", EmissionFactors.co2_t_per_kscm)),
            combustion_efficiency=float(
                env.get("FLAREWATCH_COMBUSTION_EFFICIENCY", EmissionFactors.combustion_efficiency)
            ),
            methane_fraction_vol=float(env.get("FLAREWATCH_METHANE_FRACTION", EmissionFactors.methane_fraction_vol)),
            methane_gwp=float(env.get("FLAREWATCH_METHANE_GWP", EmissionFactors.methane_gwp)),
        )
        if not 0.0 < ef.combustion_efficiency <= 1.0:
            raise ValueError(f"FLAREWATCH_COMBUSTION_EFFICIENCY must be in (0, 1], got {ef.combustion_efficiency}")
        if not 0.0 <= ef.methane_fraction_vol <= 1.0:
            raise ValueError(f"FLAREWATCH_METHANE_FRACTION must be in [0, 1], got {ef.methane_fraction_vol}")
        max_attempts = int(env.get("FLAREWATCH_MAX_PROCESS_ATTEMPTS", cls.max_process_attempts))
        if max_attempts < 1:
            raise ValueError(f"FLAREWATCH_MAX_PROCESS_ATTEMPTS must be >= 1, got {max_attempts}")
        return cls(
            s3_conn_id=env.get("FLAREWATCH_S3_CONN_ID", cls.s3_conn_id),
            db_conn_id=env.get("FLAREWATCH_DB_CONN_ID", cls.db_conn_id),
            raw_bucket=env.get("FLAREWATCH_RAW_BUCKET", cls.raw_bucket),
            processed_bucket=env.get("FLAREWATCH_PROCESSED_BUCKET", cls.processed_bucket),
            scene_source=scene_source,
            s2_source=s2_source,
            viirs_source=viirs_source,
            sources=SourceSettings.from_env(env),
            detector_kind=detector_kind,
            detector_runtime=detector_runtime,
            physics_check=physics_check == "on",
            volume_model=volume_model,
            ingest_batch=_batch_cap(env, "FLAREWATCH_INGEST_BATCH"),
            process_batch=_batch_cap(env, "FLAREWATCH_PROCESS_BATCH"),
            sites_file=env.get("FLAREWATCH_SITES_FILE") or None,
            tile_limits=TileLimits.from_env(env),
            max_process_attempts=max_attempts,
            calibration=cal,
            emission_factors=ef,
            analytics=AnalyticsConfig.from_env(env),
        )
