"""The training subsystem: the Spot trainer, its AMI and network, runs, registry, model images."""
