"""Imported once by the local pool's fork server, so every worker forks with the model, pandas, Mesa and the
compiled contact-window kernels already loaded (about 2.5 s less start-up per worker)."""
from . import experiment, model  # noqa: F401
from .continuity import warm

warm()
