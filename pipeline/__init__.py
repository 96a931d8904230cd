"""The transport-agnostic 5-step message pipeline."""
