"""pynector-sdk: the OpenAI and Anthropic SDK transport for pynector (under construction)."""
