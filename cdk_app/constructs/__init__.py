"""Reusable constructs, one concern per file."""
