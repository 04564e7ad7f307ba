"""contracting-abm: compare NHS contracting arrangements with an agent-based model.

`import abm` is light: the model (and with it Mesa and numba) loads on first use of
`abm.ContractingModel`, and the experiment runner on first call of `abm.run_experiment`.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .params import ARRANGEMENTS  # noqa: E402  (pydantic and yaml only)

__all__ = ["ContractingModel", "ARRANGEMENTS", "run_experiment", "__version__"]


def run_experiment(path_or_config, out=None, engine="local", workers=None, **kwargs):
    """Run an experiment file (see abm.experiment) and return the output directory."""
    from .experiment import run_experiment as _run
    return _run(path_or_config, out=out, engine=engine, workers=workers, **kwargs)


def __getattr__(name: str):
    """Lazy attributes (PEP 562): the model is imported only when it is asked for."""
    if name == "ContractingModel":
        from .model import ContractingModel
        globals()[name] = ContractingModel
        return ContractingModel
    raise AttributeError(f"module 'abm' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"ContractingModel"})
