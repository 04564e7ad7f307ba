"""Imported once by the local pool's fork server, so every worker forks with the model, pandas, Mesa and the
compiled kernels (contact window, dense demand scan) already loaded (about 2.5 s less start-up per worker)."""
from . import experiment, model  # noqa: F401
from . import continuity, dense_draws

continuity.warm()
dense_draws.warm()
