"""Whole sequence models under one contract (the Concepts page)."""

from .arelit import AReLiT
from .contract import (
    SequenceModel,
    check_sequence_inputs,
    check_state,
    check_step_inputs,
    get_model,
    model_names,
    register_model,
    small_kwargs,
)
from .gtrxl import GTrXL
from .memax_adapter import MemaxModel  # registers memax-<name> (needs memax to build)
from .relit import ReLiT
from .rnn import GRU, LSTM

__all__ = [
    "AReLiT",
    "ReLiT",
    "GRU",
    "GTrXL",
    "LSTM",
    "MemaxModel",
    "SequenceModel",
    "check_sequence_inputs",
    "check_state",
    "check_step_inputs",
    "get_model",
    "model_names",
    "register_model",
    "small_kwargs",
]
