"""Developer tools that are not part of the shipped package (run from the repository root)."""
