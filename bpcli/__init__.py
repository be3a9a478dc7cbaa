"""bpcli: train and understand neural networks from declarative YAML specs, with its own NumPy autodiff."""

import os as _os

# plots are files, never windows: pick the Agg backend before matplotlib is first imported
_os.environ.setdefault("MPLBACKEND", "Agg")

__version__ = "0.1.0"

from .errors import CheckFailed, InputError  # noqa: E402
from .nn.model import Model  # noqa: E402
from .spec.document import Spec  # noqa: E402
from .spec.validate import load as load_spec  # noqa: E402


def build(spec, dtype=None) -> Model:
    """A spec (path to a YAML file, dict, or :class:`Spec`) -> :class:`Model` with fresh weights.

    Raises :class:`InputError` naming file, line and key path for a spec that is not valid.
    """
    return Model(load_spec(spec), dtype=dtype)


__all__ = ["build", "Model", "Spec", "load_spec", "InputError", "CheckFailed", "__version__"]
