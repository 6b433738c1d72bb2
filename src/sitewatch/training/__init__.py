"""Training of the project's own models (plain torch); the only package that imports torch.

Users need torch only to retrain: the trained detector is exported to ONNX and run by
:mod:`sitewatch.analytics.objects` with onnxruntime.
"""

import os

# torch's OpenMP threads otherwise spin while waiting for each other: on a machine whose cores
# are shared with other work, a descheduled thread then stalls every step (measured: training
# steps 10 times slower on 2 busy cores). libgomp reads this when torch first loads it, so it is
# set here, before any module of this package imports torch; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
