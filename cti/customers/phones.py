"""A customer's phone number as the customer base stores it: :func:`cti.phone.parse_phone`
(any format to E.164, with its extension and kind), the one check of every importer.
"""

from __future__ import annotations

from cti.phone import CHINESE_EXTENSION, PhoneError, parse_phone

__all__ = ["CHINESE_EXTENSION", "PhoneError", "parse_phone"]
