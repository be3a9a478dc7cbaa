"""bpcli: train and understand neural networks from declarative YAML specs, with its own NumPy autodiff."""

import os as _os

# plots are files, never windows: pick the Agg backend before matplotlib is first imported
_os.environ.setdefault("MPLBACKEND", "Agg")

__version__ = "0.1.0"

from .errors import CheckFailed, InputError  # noqa: E402
from .nn.model import Model  # noqa: E402
from .core.document import Spec  # noqa: E402
from .spec.validate import load as load_spec  # noqa: E402


def build(spec, dtype=None) -> Model:
    """A spec (path to a YAML file, dict, or :class:`Spec`) -> :class:`Model` with fresh weights.

    Raises :class:`InputError` naming file, line and key path for a spec that is not valid.
    """
    return Model(load_spec(spec), dtype=dtype)


def load_run(run, checkpoint: str = "final") -> Model:
    """A trained run folder (written by ``bpcli train``) -> its :class:`Model`, with the weights
    and state of ``checkpoint``: ``final`` (model.npz) or ``best`` (best.npz, the best
    validation metric). Raises :class:`InputError` for a folder that is not a run or lacks it."""
    from .train.run_folder import RunFolder

    return RunFolder.open(run).load_model(checkpoint)


__all__ = ["build", "load_run", "Model", "Spec", "load_spec", "InputError", "CheckFailed", "__version__"]
