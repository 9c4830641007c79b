"""The benchmark floor: FastAPI + Mangum + numpy answering a constant, the least a request costs."""
