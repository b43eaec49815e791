"""Forward operators: the :class:`LinearOperator` contract and one registered file per operator."""

from scicli.physics import video_sci  # noqa: F401  (each import registers its operator)
from scicli.physics.base import OPERATORS, LinearOperator, register_operator
from scicli.physics.video_sci import VideoSCI

__all__ = ["OPERATORS", "LinearOperator", "VideoSCI", "register_operator"]
