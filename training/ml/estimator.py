"""The estimator the project trains: a 3-nearest-neighbour classifier whose ties break by row."""

from __future__ import annotations

from sklearn.neighbors import KNeighborsClassifier

N_NEIGHBORS = 3


def make_estimator(n_samples: int, *, n_neighbors: int = N_NEIGHBORS) -> KNeighborsClassifier:
    """A KNN classifier for `n_samples` training rows that the numpy serving code reproduces.

    `algorithm` and `leaf_size` change neither the neighbours' distances nor the fit, only which
    of several equidistant points wins a tie. A single-leaf tree scans rows in order and keeps
    the first of equals, the rule the serving evaluator implements; the default multi-leaf tree
    (and brute force, whose GEMM distances round differently) breaks ties otherwise.
    """
    return KNeighborsClassifier(
        n_neighbors=n_neighbors,
        weights="uniform",
        algorithm="kd_tree",
        leaf_size=max(30, n_samples),
    )
