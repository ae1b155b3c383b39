"""Zip bytes as other zip writers make them, for hostile-input tests on every face that takes a zip."""

from __future__ import annotations


def patched_entry(data: bytes, name: str, *, flag: int = 0, method: int | None = None) -> bytes:
    """``data`` with ``name``'s general-purpose flags or'ed with ``flag`` and its compression method set to
    ``method``, in its local and central headers alike (what another zip writer would have written)."""
    buf = bytearray(data)
    encoded = name.encode()
    for signature, flag_at, method_at, name_at in ((b"PK\x03\x04", 6, 8, 30), (b"PK\x01\x02", 8, 10, 46)):
        at = buf.find(signature)
        while at != -1:
            if buf[at + name_at : at + name_at + len(encoded)] == encoded:
                buf[at + flag_at] |= flag
                if method is not None:
                    buf[at + method_at : at + method_at + 2] = method.to_bytes(2, "little")
            at = buf.find(signature, at + 1)
    return bytes(buf)
