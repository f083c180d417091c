-- The daily series the analytics read (flarewatch.analytics.refresh): emissions_daily over
-- %(start)s .. %(end)s with each day's mean Sentinel-2 colour temperature and summed SWIR FRP.
-- observed = processed and seen by a sensor whose view was usable: a Sentinel-2 scene clouded over
-- the site's flares does not count (pending, failed and unobserved days are missing).
-- The mean and sum run in detection-key order: float results depend on the order of the terms.
SELECT d.site_id, d.day, d.status,
       (d.status = 'processed' AND (coalesce(d.s2_usable, d.s2_observed) OR d.viirs_observed)) AS observed,
       d.n_flares, d.volume_kscm, d.volume_lo_kscm, d.volume_hi_kscm,
       f.temperature_k, f.frp_mw
FROM emissions_daily d
JOIN sites s ON s.site_id = d.site_id AND s.active
LEFT JOIN (
    SELECT site_id, acquisition_date,
           avg(temperature_k ORDER BY detection_key) FILTER (WHERE sensor = 'sentinel2') AS temperature_k,
           sum(swir_frp_mw ORDER BY detection_key) AS frp_mw
    FROM flare_detections
    WHERE acquisition_date BETWEEN %(start)s AND %(end)s
    GROUP BY site_id, acquisition_date
) f ON f.site_id = d.site_id AND f.acquisition_date = d.day
WHERE d.day BETWEEN %(start)s AND %(end)s
ORDER BY d.site_id, d.day;
