"""Byte units, defined once, and how the course prints a size.

GB and MB are decimal (10^9 and 10^6 bytes: disks, network, most prose). GiB and MiB are binary (2^30 and 2^20
bytes): GPU memory is built and reported in them, so an "80GB" A100 holds 81,920 MiB = 80 GiB = 85.9 GB. Every
figure in coursekit is in bytes; a printed figure names its unit.

    from coursekit.units import GIB, gib_text
    gib_text(24_564 * MIB)        # '24.0 GiB'
"""
from __future__ import annotations

GB = 1e9
MB = 1e6
GIB = 2**30
MIB = 2**20


def gib_text(n_bytes: float, digits: int = 1) -> str:
    """``n_bytes`` in GiB (2^30 bytes) with thousands separators: ``'140.4 GiB'``."""
    return f"{n_bytes / GIB:,.{digits}f} GiB"


def gb_text(n_bytes: float, digits: int = 1) -> str:
    """``n_bytes`` in GB (10^9 bytes) with thousands separators: ``'150.8 GB'``."""
    return f"{n_bytes / GB:,.{digits}f} GB"


def gb_and_gib_text(n_bytes: float, digits: int = 1) -> str:
    """Both units, decimal first: ``'150.8 GB (140.4 GiB)'``."""
    return f"{gb_text(n_bytes, digits)} ({gib_text(n_bytes, digits)})"


__all__ = ["GB", "GIB", "MB", "MIB", "gb_and_gib_text", "gb_text", "gib_text"]
