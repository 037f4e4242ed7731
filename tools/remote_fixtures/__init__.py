"""Fixtures for the model types only their publishers' remote code defines.

transformers cannot instantiate these (no class in the library), so
``tools/gen_remote_fixtures.py`` builds their tiny checkpoints from the publisher's own
description instead: one module here per fixture, named after the fixture, whose
docstring says where every tensor name and config key comes from (the publisher's
``modeling_*.py`` / ``configuration_*.py`` on the Hub, or the real release's
``model.safetensors.index.json``), and which defines::

    CONFIG: dict                      # config.json, as the real release writes it (tiny sizes)
    def tensors(config) -> dict[str, tuple[tuple[int, ...], str]]
        # name -> (shape, dtype) of every tensor the real checkpoint holds, in the
        # publisher's names ("bfloat16", "float32", ...)

and, optionally, ``def fill(name, shape, dtype, rng) -> numpy array | None`` for the
tensors whose values the release constrains (None: the default noise).

The driver fills the tensors with seeded N(0, 0.02) noise (norm weights around 1), writes
``model.safetensors`` with the ``safetensors`` package, the config, the generation config
and the same word-level tokenizer as the transformers-built fixtures. mlxq writes none of
it. Each fixture must be accepted by ``mlx_lm.convert`` and loaded strictly by ``mlx_lm``
(unless mlx-lm itself fails on a faithful input: the family's test records that).
"""
