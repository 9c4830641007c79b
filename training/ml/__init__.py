"""The ML code: dataset checks, the estimator, training, the gate, the export (numpy, sklearn)."""
