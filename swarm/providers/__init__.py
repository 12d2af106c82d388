"""HTTP clients of the model providers. Each takes an injected ``httpx.Client``."""
