"""Independent evaluation scenes: a second, separately written Sentinel-2 SWIR scene generator.

Independence rule. Nothing here was written from, reads, or imports ``flarewatch.simulation``,
``flarewatch.training``, ``scripts/`` or the model cards: the generator was written from the
physics and the public constants in ``shared/docs/domain.md`` only, with its own choices for every
modelling decision, so that scores on these scenes are not inflated by a detector or regressor
having learnt the training simulator's quirks. These scenes are never used for training or model
selection; they are a held-out test of the deployed models.

Modules: ``radiometry`` (per-spacecraft constants, Planck, PSF, noise), ``landscape`` (land-cover
backgrounds), ``hotspots`` (flares, wildfires, glint), ``generator`` (``make_scene(seed, index)``),
``harness`` (scores the deployed detectors and volume models, ``evaluate``).

Assumptions (each also stated where it is used):
- Scenes are L1C-like TOA reflectance at 20 m, 512 x 512 px by default; DN = rho * 10000 + 1000
  for processing baseline >= 04.00 (85 % of scenes, 2022-2025), DN = rho * 10000 for older ones;
  valid DN 1..32767, saturation DN 65535, nodata DN 0 (swath edges).
- Sentinel-2A and 2B differ in band centres, bandwidths and solar irradiance (domain.md); flame
  radiance is the Planck radiance averaged over a box band response. Earth-Sun distance from
  Duffie & Beckman; sun zenith from Spencer's declination at ~10:30 local solar time.
- Flames: single-temperature blackbodies, 1300-2200 K (mean 1760 K), radiant heat lognormal
  (median 1.4 MW, 0.03-80 MW), area S = RH / (sigma T^4), spread along a 1-30 m segment;
  a quarter of the sites have two stacks 1.5-4 px apart. Truth position = flame centroid in the
  B8A grid (pixel centre = index + 0.5); B11/B12 are misregistered (sd 0.1 px per axis, <= 0.3 px).
- PSF: gaussian core (sigma 0.38-0.55 px) + power-law wings (6-16 % of the energy), integrated
  over the pixel. Atmospheric transmittance 0.82-0.97 per band; haze; cumulus clouds with
  shadows attenuate flames. Noise: radiance-dependent (MSI SNR at L_ref). Saturation at an assumed
  per-band radiance (B8A 330, B11 72, B12 26 W m-2 sr-1 um-1).
- True volume: the linear VIIRS calibration of Zhizhin et al. 2025 (Energies 18(17):4765,
  reported): BCM/yr = 0.0115 x RH [MW], i.e. 31.507 thousand m3/day per MW of sigma T^4 S;
  the power law of Elvidge et al. 2016 (Energies 9(1):14, slope 0.029353, S^0.7) is kept as
  ``volume_power_kscm_d``.

References: domain.md (Sentinel-2 special values and per-spacecraft constants: COPE-GSEG-EOPG-
TN-15-0007 v3.0, MTD_MSIL1C.xml; flare/fire temperatures: Elvidge et al. 2013, Remote Sensing
5(9):4423; SWIR FRP: Fisher & Wooster 2018, Remote Sensing 10(2):305; false positives: glint,
roofs, wildfires); Planck's law and CODATA constants; Duffie & Beckman, Solar Engineering of
Thermal Processes (Earth-Sun distance); Spencer 1971 (declination).
"""
