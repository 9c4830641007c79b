"""The benchmark baseline: the usual FastAPI + joblib scikit-learn Lambda app."""
