"""HTTP clients of the model providers. Each takes an injected ``Http`` (providers.http)."""
