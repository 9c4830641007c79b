"""The data subsystem: the versioned data lake and its seeded dataset."""
