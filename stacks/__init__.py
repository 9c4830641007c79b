"""The stacks; each only wires constructs, grants between them and declares outputs."""
