"""relit_eqx: recurrent linear transformers (ReLiT, AReLiT) for online RL, in JAX + Equinox.

ReLiT and AReLiT were renamed GaLiTe and AGaLiTe in the TMLR version of the paper
("AGaLiTe: Approximate Gated Linear Transformers for Online Reinforcement Learning").
"""

from . import functional, kernels, models, update_rules
from .models import (
    GRU,
    LSTM,
    AReLiT,
    GTrXL,
    ReLiT,
    SequenceModel,
    get_model,
    model_names,
    register_model,
)

__version__ = "0.1.0"

__all__ = [
    "functional",
    "kernels",
    "models",
    "update_rules",
    "AReLiT",
    "ReLiT",
    "GTrXL",
    "GRU",
    "LSTM",
    "SequenceModel",
    "get_model",
    "model_names",
    "register_model",
]
