"""The trainer: dataset -> validate -> train -> evaluate -> gate -> export, one CLI."""
