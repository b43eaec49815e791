"""Forward operators: the :class:`LinearOperator` contract and one registered file per operator.

Every module of this package is imported here, so a new operator is one file: subclass
:class:`LinearOperator`, decorate it with ``@register_operator(name)``, and it appears in
``scicli methods`` and ``--operator``.
"""

import importlib
import pkgutil

from scicli.physics.base import OPERATORS, LinearOperator, register_operator
from scicli.physics.video_sci import VideoSCI

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("base", "masks"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["OPERATORS", "LinearOperator", "VideoSCI", "register_operator"]
