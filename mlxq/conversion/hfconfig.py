"""``config.json`` as mlx-lm reads and writes it.

- reading (``load_config``): transformers tags non-finite floats (``{"__float__": "NaN"}``),
  which mlx-lm decodes; ``generation_config.json``'s ``eos_token_id`` is copied in when
  truthy; the file must be a regular file holding a JSON object with a string
  ``model_type`` (mlx-lm picks the architecture by it); both files obey the source
  folder's symlink rule (:func:`mlxq._files.confine`) before a byte of either is used;
- writing (``config_text``): ``save_config``'s output — ``_name_or_path`` and (unless the
  model keeps its vision tower) ``vision_config`` dropped, ``quantization`` mirrored into
  ``quantization_config``, keys sorted, ``indent=4``, non-finite floats tagged again.

>>> print(config_text({"b": 1, "a": float("inf"), "_name_or_path": "x"}))
{
    "a": {
        "__float__": "Infinity"
    },
    "b": 1
}
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

from .._files import confine, is_regular, read_json
from ..errors import MissingKeyError, ParseError

__all__ = ["config_text", "load_config"]

# transformers tags non-finite floats in config.json ({"__float__": "NaN"}); mlx-lm's
# load_config decodes them and save_config encodes them again.
_FLOAT_TAG = "__float__"
_FLOAT_TAGS = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}


def _decode_floats(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {_FLOAT_TAG} and obj[_FLOAT_TAG] in _FLOAT_TAGS:
            return _FLOAT_TAGS[obj[_FLOAT_TAG]]
        return {k: _decode_floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode_floats(v) for v in obj]
    return obj


def _encode_floats(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return {_FLOAT_TAG: "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")}
    if isinstance(obj, dict):
        return {k: _encode_floats(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_encode_floats(v) for v in obj]
    return obj


def load_config(src: Path) -> dict[str, Any]:
    """``config.json`` as mlx-lm's ``load_config`` reads it (tagged floats decoded,
    ``generation_config.json``'s ``eos_token_id`` copied in when truthy), checked for what
    the conversion needs: an object with a string ``model_type`` (mlx-lm picks the
    architecture by it, and fails later with a ``KeyError`` without it)."""
    path = src / "config.json"
    if not os.path.lexists(path):
        raise MissingKeyError(f"{src}: no config.json; a Hugging Face checkpoint folder has "
                              "one next to its weights", key="config.json")
    config = _decode_floats(read_json(path, within=src))
    if not isinstance(config, dict):
        raise ParseError(f"{path}: expected a JSON object, got {type(config).__name__}")
    mt = config.get("model_type")
    if mt is None:
        raise MissingKeyError(f"{path}: no 'model_type'; mlx-lm picks the architecture by it "
                              "(e.g. \"llama\")", key="model_type")
    if not isinstance(mt, str):
        raise ParseError(f"{path}: 'model_type' must be a string, got {mt!r:.60}",
                         key="model_type")
    gen = src / "generation_config.json"
    # the link rule first: a generation config outside the folder is refused, not merged
    if os.path.lexists(gen) and is_regular(confine(gen, src)):
        try:
            gc = read_json(gen, within=src)
        except ParseError:
            gc = {}  # mlx-lm ignores an unreadable generation config too
        if isinstance(gc, dict) and (eos := gc.get("eos_token_id", False)):
            config["eos_token_id"] = eos
    return config


def config_text(config: Mapping[str, Any], keep_vision_config: bool = False) -> str:
    """mlx-lm's ``save_config`` output for ``config`` (already cleaned of popped keys);
    ``keep_vision_config`` for a model that keeps its vision tower (``save`` passes it when
    ``model.model`` has a ``vision_tower``)."""
    config = dict(config)
    config.pop("_name_or_path", None)
    if not keep_vision_config:
        config.pop("vision_config", None)
    if "quantization" in config:
        config["quantization_config"] = config["quantization"]
    config = dict(sorted(config.items()))
    return json.dumps(_encode_floats(config), indent=4)
