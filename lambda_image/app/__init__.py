"""The serving app: FastAPI behind Mangum, evaluating the exported KNN model with numpy."""
