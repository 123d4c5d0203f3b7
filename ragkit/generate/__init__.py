"""Generate: the generator base with retries and fallback, and routing between local and API models."""
