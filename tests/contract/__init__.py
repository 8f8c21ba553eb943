"""Backend-agnostic contract tests shared by every index backend."""
