"""aisystem: a self-hosted AI assistant gateway."""
