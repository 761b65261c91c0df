"""Integrations of flashprefill with other libraries.

* :mod:`flashprefill.integrations.transformers`: the Hugging Face transformers
  attention backend ``attn_implementation="flashprefill"``.

Nothing here is imported by ``import flashprefill``: each integration imports
its library only when it is used, so the package keeps working without them.
"""
