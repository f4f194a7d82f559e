"""Inter-judge agreement: the coefficients, the workspace's reliability report, charts and HTML."""

# What the command line's parser needs, here so building it does not import numpy (which
# app.agreement.coefficients does): `chambers app` starts without it.
LEVELS = ("nominal", "ordinal", "interval", "ratio")
DEFAULT_BOOT = 1000
