"""The serving subsystem: the function, the HTTP API, CloudFront, and how a model goes live."""
