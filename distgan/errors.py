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


def one_line(err: BaseException, limit: int = 300) -> str:
    """An exception as 'Type: message' on one line, at most `limit` characters, for wrapping in a DistganError."""
    text = " ".join(str(err).split())
    return (f"{type(err).__name__}: {text}" if text else type(err).__name__)[:limit]
