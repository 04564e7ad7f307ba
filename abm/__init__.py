"""contracting-abm: compare NHS contracting arrangements with an agent-based model."""
__version__ = "0.1.0"

from .model import ContractingModel  # noqa: E402
from .params import ARRANGEMENTS  # noqa: E402


def run_experiment(path_or_config, out=None, engine="local", workers=None, **kwargs):
    """Run an experiment file (see abm.experiment) and return the output directory."""
    from .experiment import run_experiment as _run
    return _run(path_or_config, out=out, engine=engine, workers=workers, **kwargs)


__all__ = ["ContractingModel", "ARRANGEMENTS", "run_experiment", "__version__"]
