"""relit_eqx: recurrent linear transformers (ReLiT, AReLiT) for online RL, in JAX + Equinox."""

from . import functional as functional
from . import models as models
from .models import SequenceModel, get_model, model_names, register_model

__all__ = ["functional", "models", "SequenceModel", "get_model", "model_names", "register_model"]
