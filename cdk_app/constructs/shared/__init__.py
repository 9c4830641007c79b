"""Building blocks every subsystem uses: secure buckets, queues, roles, logs, Python functions."""
