"""Forward operators of snapshot compressive imaging."""

from scicli.physics.sci import VideoSCI, adjointness_error

__all__ = ["VideoSCI", "adjointness_error"]
