"""The CDK app's own code: configuration, reusable constructs and the app builder."""
