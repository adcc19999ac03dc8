# The part of http-ece (1.2.1, untyped) workers/pusher.py calls; see pyproject's mypy_path.
from cryptography.hazmat.primitives.asymmetric import ec

class ECEException(Exception):
    message: str

def encrypt(
    content: bytes,
    salt: bytes | None = ...,
    key: bytes | None = ...,
    private_key: ec.EllipticCurvePrivateKey | None = ...,
    dh: bytes | ec.EllipticCurvePublicKey | None = ...,
    auth_secret: bytes | None = ...,
    keyid: str | None = ...,
    keylabel: str = ...,
    rs: int = ...,
    version: str = ...,
) -> bytes: ...
