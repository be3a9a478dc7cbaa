"""bpcli's own automatic differentiation: primitives with their rules, programs, and the modes that run them."""

from .program import Builder, Eqn, Program, Var, backward, evaluate, forward_tangent
from .rules import PRIMITIVES, Primitive, unbroadcast
from . import resample_rules  # noqa: F401,E402  (registers upsample in PRIMITIVES)
from . import gather_rules  # noqa: F401,E402  (registers gather, lookup, weigh)
from . import norm_rules  # noqa: F401,E402  (registers batch_norm, batch_norm_affine)

__all__ = ["Builder", "Eqn", "Program", "Var", "backward", "evaluate", "forward_tangent",
           "PRIMITIVES", "Primitive", "unbroadcast"]
