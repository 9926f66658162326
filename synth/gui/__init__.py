"""The desktop app (PySide6 + pyqtgraph). Imports flow one way: gui -> synth.engine."""

from __future__ import annotations

import sys


def _immortal_singletons() -> None:
    """PySide6 6.12's bindings return ``None`` from every void method (``setText``, ``update``, ``setValue``...)
    without a new reference: they count on ``None`` being immortal, as it is from Python 3.12 on (PEP 683). On 3.11
    each such call takes one reference from ``None``; the window's 20 Hz status updates alone took ~250-450 per
    second, so after about 6-11 minutes, or at quit when the garbage collector runs, the app died with "Fatal Python
    error: none_dealloc" (issue 17: "1 quit in 7 crashed"). Give ``None`` (and the bools, whose "bool_dealloc"
    showed up the same way) the never-ending reference count they have on 3.12."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython" or hasattr(sys, "getobjects"):
        return  # immortal already; or not CPython; or a trace-refs debug build (another object layout)
    import ctypes

    for obj in (None, True, False):
        refcount = ctypes.c_ssize_t.from_address(id(obj))  # ob_refcnt, the first field of every object
        if refcount.value < 1 << 40:
            refcount.value += 1 << 40


_immortal_singletons()
