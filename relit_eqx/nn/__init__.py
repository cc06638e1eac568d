"""Equinox layers built on the functional core: attention mixers, the GRU gate, the block."""

from .attention import AReLiTAttention, ReLiTAttention
from .block import EncoderBlock
from .gating import GRUGate
from .mixer import SequenceMixer
from .xl_attention import XLAttention, XLMemory

__all__ = [
    "AReLiTAttention",
    "ReLiTAttention",
    "EncoderBlock",
    "GRUGate",
    "SequenceMixer",
    "XLAttention",
    "XLMemory",
]
