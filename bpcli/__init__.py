"""bpcli: train and understand neural networks from declarative YAML specs, with its own NumPy autodiff."""

import os as _os

# plots are files, never windows: pick the Agg backend before matplotlib is first imported
_os.environ.setdefault("MPLBACKEND", "Agg")

from .errors import CheckFailed, InputError  # noqa: E402
from .model import Model, build  # noqa: E402
from .spec import Spec, load as load_spec  # noqa: E402

__version__ = "0.1.0"
__all__ = ["build", "Model", "Spec", "load_spec", "InputError", "CheckFailed", "__version__"]
