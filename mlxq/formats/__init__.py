"""Other producers' checkpoint formats, one module each, read into what MLX and mlx-lm use.

Every module has the same shape: it *detects* its format (from a config or a file's first
bytes), *reads* lazily (tensor by tensor, a row slice at a time where it can), and
*transforms* what it reads into the tensors the model family's ``sanitize`` expects —
MLX's quantized triples where the source's bits fit MLX's layout exactly, floats otherwise.

- :mod:`mlxq.formats.awq`: AutoAWQ GEMM checkpoints (docs/awq.md);
- :mod:`mlxq.formats.gptq`: GPTQ v1/v2 checkpoints (docs/gptq.md);
- :mod:`mlxq.formats.mxfp4_checkpoint`: gpt-oss MXFP4 checkpoints (docs/mxfp4-checkpoints.md);
- :mod:`mlxq.formats.external`: detection of the three above and the per-group interface
  the converter drives;
- :mod:`mlxq.formats.fp8`: float8 (E4M3) checkpoints, block or per-tensor/channel scaled;
- :mod:`mlxq.formats.compressed_tensors`: compressed-tensors checkpoints
  (docs/source-formats.md).

The modules used to sit at the package top (``mlxq.awq``, ...); those paths still work for
a release and raise a ``DeprecationWarning``.
"""
