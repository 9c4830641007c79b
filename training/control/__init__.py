"""The control-plane Lambdas and the promotion logic: standard library and boto3 only."""
