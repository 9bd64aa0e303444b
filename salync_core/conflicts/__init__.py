"""Per-field source of truth: policies, the three-way resolver and conflicts."""
