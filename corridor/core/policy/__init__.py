"""Policy stages, each a pure function of an Arrow batch (docs/DESIGN.md section 7).

classify (important rows) -> withhold (validate, corridor rule, admitted kinds)
-> transform (drop, mask, pseudonymize, encrypt) -> tag (residency headers).
"""

from corridor.core.policy.classify import important_mask
from corridor.core.policy.tag import lineage_header, lineage_range, record_headers
from corridor.core.policy.transform import TransformContext, Transformed, apply_transforms
from corridor.core.policy.withhold import Reasons, validate_reasons, withhold_reasons

__all__ = [
    "Reasons",
    "TransformContext",
    "Transformed",
    "apply_transforms",
    "important_mask",
    "lineage_header",
    "lineage_range",
    "record_headers",
    "validate_reasons",
    "withhold_reasons",
]
