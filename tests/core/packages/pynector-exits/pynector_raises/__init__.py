"""A transport module that raises a ``BaseException`` that is not an ``Exception``."""


class Abort(BaseException):
    """Like ``SystemExit`` or ``GeneratorExit``: not caught by ``except Exception``."""


raise Abort("pynector_raises aborts its import")
