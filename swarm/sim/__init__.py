"""The provider simulator: a real HTTP server on 127.0.0.1 that speaks Moonshot's chat
completions and Anthropic's messages API, for the demo, the tests and the benchmarks."""
