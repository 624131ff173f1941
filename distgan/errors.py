"""Errors that distgan reports to the user as one line, before expensive work where possible."""


class DistganError(Exception):
    """Base class: the message is the whole story, printed without a traceback."""


class DataError(DistganError):
    """The data cannot be read as configured (missing path, no images, corrupt file, ...)."""


class ModelError(DistganError):
    """A model cannot be built (unknown name, import failure, wrong output shape, ...)."""


class CheckpointError(DistganError):
    """A checkpoint cannot be written or read."""


class NonFiniteError(DistganError):
    """Training produced NaN/Inf and `train.on_nonfinite` says to stop."""
