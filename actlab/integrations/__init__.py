"""Plug-ins for the libraries people already use; each is imported only when asked for (its library is optional).

- ``actlab.integrations.transformers.register()``: Hugging Face configs accept ``hidden_act="actlab:swish(beta=1.5)"``.
"""
