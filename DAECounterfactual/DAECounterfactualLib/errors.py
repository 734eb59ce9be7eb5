"""Errors the user is meant to read: one message naming the input and the problem, no traceback needed.

The CLI prints these and exits non-zero; the Slicer widget shows them in a message box. Anything else that
escapes is a bug.
"""


class DAECFError(Exception):
    """Base class of expected, user-facing errors."""


class InputError(DAECFError, ValueError):
    """An input file, node, point or argument that cannot be used as given."""


class BundleError(DAECFError):
    """A model bundle that is missing, incomplete, tampered with or inconsistent."""


class Cancelled(DAECFError):
    """The user cancelled a long call; whatever it had started was rolled back."""


class BusyError(DAECFError):
    """A request arrived while another one was still running: refused, never interleaved."""
