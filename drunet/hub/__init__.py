"""The Hugging Face Hub: ``hf:org/name`` models fetched into the local cache (:mod:`.fetch`), the
model card a ``save_pretrained`` folder carries (:mod:`.card`) and ``push_to_hub`` (:mod:`.push`).

``huggingface_hub`` is optional (``pip install "drunet[hub]"``): it is imported only when an
``hf:`` model is named or a model is pushed. :mod:`.fetch` imports nothing of drunet's but its
errors, so :mod:`drunet.checkpoint` resolves ``hf:`` names through it; the other modules build on
the checkpoint.
"""
