"""Grafana data frames: plain values (`model`), Arrow IPC codec (`arrow`), and builders that
turn forecasts into the frame shapes panels and alert rules read (`forecast`, `alerting`)."""

from .arrow import decode_frame, encode_frame
from .model import Field, Frame, FrameMeta, Notice

__all__ = ["Field", "Frame", "FrameMeta", "Notice", "decode_frame", "encode_frame"]
