"""mlx-lm's ``models/solar_open.py`` (Upstage Solar Open): its own ``ModelArgs`` (defaults
for ``use_qk_norm``, ``attention_bias``, the grouping and top-k method) over glm4_moe's
``Model``, which it imports unchanged. So the conversion is glm4_moe's
(:mod:`mlxq.models.glm4_moe`): ``Model.sanitize`` stacks the routed experts into
``mlp.switch_mlp`` and drops the multi-token-prediction layer (index
``num_hidden_layers``); the router ``mlp.gate`` is a bare parameter whose
``e_score_correction_bias`` keeps the source dtype (``Model.cast_predicate``); the model
always has an ``lm_head``.

>>> FAMILY.sanitize is glm4_moe.FAMILY.sanitize
True
"""

from __future__ import annotations

import dataclasses

from . import glm4_moe

FAMILY = dataclasses.replace(glm4_moe.FAMILY, module="solar_open", model_types=("solar_open",))
