"""Wire formats other than the internal OpenAI chat shape (Anthropic Messages)."""
