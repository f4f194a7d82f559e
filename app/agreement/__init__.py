"""Inter-judge agreement: the coefficients, the workspace's reliability report, charts and HTML."""
