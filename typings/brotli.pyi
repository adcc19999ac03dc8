# The part of Brotli (1.1.0, untyped) rules/compression.py calls; see pyproject's mypy_path.
MODE_GENERIC: int
MODE_TEXT: int
MODE_FONT: int

class error(Exception): ...

def compress(string: bytes, mode: int = ..., quality: int = ..., lgwin: int = ...,
             lgblock: int = ...) -> bytes: ...
def decompress(string: bytes) -> bytes: ...
