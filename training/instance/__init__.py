"""The run on the Spot instance: the pipeline, the instance metadata service, Docker."""
