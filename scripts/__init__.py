"""Developer and operator tools behind make targets."""
