"""The serving function's environment variable names and defaults, spelled once.

The image is built from lambda_image/ alone, so these live here rather than in
training/contract.py: the CDK construct that sets the variables imports this module
(cdk_app/constructs/serving/serving_function.py), and the app reads them through settings.py
and tracing.py. Standard library only.
"""

from __future__ import annotations

from typing import Final

MODEL_DIR: Final = "MODEL_DIR"
MAX_INSTANCES: Final = "MAX_INSTANCES"
MAX_BODY_BYTES: Final = "MAX_BODY_BYTES"
# Powertools' variable names: the convention the Lambda construct and dashboards share.
SERVICE_NAME: Final = "POWERTOOLS_SERVICE_NAME"
METRICS_NAMESPACE: Final = "POWERTOOLS_METRICS_NAMESPACE"
TRACE_SAMPLE_RATE: Final = "TRACE_SAMPLE_RATE"
TRACE_RESERVOIR_PER_HOUR: Final = "TRACE_RESERVOIR_PER_HOUR"

# The metric dimensions' service, and the namespace every EMF metric of the app goes to (the
# pipeline's registry metrics use the same one: training/contract.py, a test keeps them equal).
DEFAULT_SERVICE: Final = "iris-api"
DEFAULT_NAMESPACE: Final = "IrisML"
