"""Modem transcripts for the parser and call tests, with hex caller-ID builders."""

from __future__ import annotations


def _with_checksum(msg: bytes) -> bytes:
    return msg + bytes([(-sum(msg)) % 256])


def sdmf(stamp: str, number: str) -> str:
    """Hex of an SDMF (0x04) message: MMDDHHMM then the number (or P / O)."""
    body = (stamp + number).encode("ascii")
    return _with_checksum(bytes([0x04, len(body)]) + body).hex().upper()


def mdmf(params: list[tuple[int, bytes]]) -> str:
    """Hex of an MDMF (0x80) message with the given (type, value) parameters."""
    body = b"".join(bytes([t, len(v)]) + v for t, v in params)
    return _with_checksum(bytes([0x80, len(body)]) + body).hex().upper()


US_FORMATTED = (
    b"RING\r\n\r\nDATE = 0321\r\nTIME = 1405\r\nNMBR = 5045551234\r\n"
    b"NAME = A N OTHER\r\n\r\nRING\r\n\r\nRING\r\n"
)
UK_BEFORE_FIRST_RING = (
    b"\r\nDATE=0321\r\nTIME=1405\r\nNMBR=01632960123\r\nNAME=J SMITH\r\n\r\nRING\r\n"
)
PRIVATE = b"RING\r\n\r\nDATE = 0321\r\nTIME = 1405\r\nNMBR = P\r\nNAME = P\r\n\r\nRING\r\n"
OUT_OF_AREA = b"RING\r\n\r\nDATE = 0321\r\nTIME = 1405\r\nNMBR = O\r\n\r\nRING\r\n"
DDN = (
    b"RING\r\n\r\nDATE = 0321\r\nTIME = 1405\r\nDDN_NMBR= 15045551234\r\n"
    b"NAME=  ACME   LTD     \r\n\r\nRING\r\n"
)
MESG = b"RING\r\n\r\nMESG = 060342\r\nNMBR = 5045551234\r\n\r\nRING\r\n"
NAME_MISSING = b"RING\r\n\r\nDATE = 0321\r\nTIME = 1405\r\nNMBR = 5045551234\r\n\r\nRING\r\n"
NO_CALLER_ID = b"RING\r\n\r\nRING\r\n\r\nRING\r\n"
NON_ASCII_NAME = "RING\n\nNMBR = 5045551234\nNAME = ZOË ÅBERG   \n\nRING\n".encode()
LATIN1_NAME = b"RING\r\nNMBR = 5045551234\r\nNAME = Jos\xe9\r\nRING\r\n"
# V0 numeric codes: CR only.
NUMERIC = b"0\r2\r2\r3\r4\r6\r7\r8\r"
ECHO_ON = b"ATE0V1Q0S0=0\r\r\nOK\r\nAT+VCID=1\r\r\nERROR\r\n"
LFCR = b"\n\rRING\n\r\n\rNMBR = 5045551234\n\rNAME = A N OTHER\n\r\n\rRING\n\r"
CR_ONLY = b"\rRING\r\rNMBR = 5045551234\rNAME = A N OTHER\r\rRING\r"
SDMF_HEX = sdmf("03211405", "5045551234")
SDMF_PRIVATE_HEX = sdmf("03211405", "P")
MDMF_HEX = mdmf([(0x01, b"03211405"), (0x02, b"5045551234"), (0x07, b"A N OTHER      ")])
MDMF_ABSENT_HEX = mdmf([(0x01, b"03211405"), (0x04, b"O"), (0x08, b"P")])
UNFORMATTED_SDMF = b"RING\r\n\r\n" + SDMF_HEX.encode() + b"\r\n\r\nRING\r\n"
UNFORMATTED_MDMF = b"RING\r\n\r\n" + MDMF_HEX.encode() + b"\r\n\r\nRING\r\n"
UNFORMATTED_MDMF_ABSENT = b"RING\r\n\r\n" + MDMF_ABSENT_HEX.encode() + b"\r\n\r\nRING\r\n"
# A long MDMF message wrapped after 60 hex digits (as a US Robotics manual shows it).
MDMF_WRAPPED = (
    b"RING\r\n" + MDMF_HEX[:60].encode() + b"\r\n" + MDMF_HEX[60:].encode() + b"\r\nRING\r\n"
)
# Some USB modems pad lines with NULs; numbers may come with punctuation.
NUL_PADDED = b"\x00RING\x00\r\n\x00NMBR = 504-555-1234\x00\r\nNAME = A N OTHER\r\n\x00RING\r\n"
# Odd spacing and tabs; an empty NAME.
SPACED_ODDLY = b"RING\r\n  NMBR   =5045551234  \r\n NAME=   \r\n\tRING\t\r\n"

ALL = {
    "us_formatted": US_FORMATTED,
    "uk_before_first_ring": UK_BEFORE_FIRST_RING,
    "private": PRIVATE,
    "out_of_area": OUT_OF_AREA,
    "ddn_nmbr": DDN,
    "mesg": MESG,
    "name_missing": NAME_MISSING,
    "no_caller_id": NO_CALLER_ID,
    "non_ascii_name": NON_ASCII_NAME,
    "latin1_name": LATIN1_NAME,
    "numeric": NUMERIC,
    "echo_on": ECHO_ON,
    "lfcr": LFCR,
    "cr_only": CR_ONLY,
    "sdmf": UNFORMATTED_SDMF,
    "mdmf": UNFORMATTED_MDMF,
    "mdmf_absent": UNFORMATTED_MDMF_ABSENT,
    "mdmf_wrapped": MDMF_WRAPPED,
    "nul_padded": NUL_PADDED,
    "spaced_oddly": SPACED_ODDLY,
}
