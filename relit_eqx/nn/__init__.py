"""Equinox layers built on the functional core: attention mixers, the GRU gate, the block,
the dense layer."""

from .attention import AReLiTAttention, ReLiTAttention
from .block import EncoderBlock
from .dense import Dense
from .gating import GRUGate
from .mixer import SequenceMixer
from .xl_attention import XLAttention, XLMemory

__all__ = [
    "AReLiTAttention",
    "ReLiTAttention",
    "Dense",
    "EncoderBlock",
    "GRUGate",
    "SequenceMixer",
    "XLAttention",
    "XLMemory",
]
