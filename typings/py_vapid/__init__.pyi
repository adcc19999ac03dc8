# The part of py-vapid (1.9.6, untyped) workers/pusher.py calls; see pyproject's mypy_path.
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

class VapidException(Exception): ...

class Vapid02:
    def __init__(self, private_key: ec.EllipticCurvePrivateKey | None = ...,
                 conf: dict[str, Any] | None = ...) -> None: ...
    def sign(self, claims: dict[str, Any], crypto_key: str | None = ...) -> dict[str, str]: ...

Vapid = Vapid02
