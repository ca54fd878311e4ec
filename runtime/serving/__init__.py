"""Serving: a model behind an OpenAI-compatible API (``model_server``) and compiled environments over the network."""
