"""IPTC `DigitalSourceType` in an XMP packet: write it into a JPEG or PNG, read it back.

The packet holds that one field and nothing else (no dates, tool names or ids).
"""

from __future__ import annotations

import re
import struct
import zlib

XMP_JPEG_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
XMP_PNG_KEYWORD = b"XML:com.adobe.xmp"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_PACKET = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
    '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
    ' Iptc4xmpExt:DigitalSourceType="{source_type}"/>'
    "</rdf:RDF></x:xmpmeta>"
    '<?xpacket end="w"?>'
)
_SOURCE_TYPE = re.compile(rb'Iptc4xmpExt:DigitalSourceType(?:="([^"]*)"|>([^<]*)<)')


def add_digital_source_type(data: bytes, source_type: str) -> bytes:
    """The JPEG or PNG file `data` with an XMP packet naming `source_type` (a URI from IPTC's vocabulary)."""
    packet = _PACKET.format(source_type=source_type).encode("utf-8")
    if data.startswith(PNG_SIGNATURE):
        return _insert_png_chunk(data, b"iTXt", XMP_PNG_KEYWORD + b"\x00\x00\x00\x00\x00" + packet)
    if data.startswith(b"\xff\xd8"):
        segment = XMP_JPEG_HEADER + packet
        at = 2  # after SOI, and after the JFIF APP0 segment that must come first
        if data[2:4] == b"\xff\xe0":
            at += 2 + struct.unpack(">H", data[4:6])[0]
        return data[:at] + b"\xff\xe1" + struct.pack(">H", len(segment) + 2) + segment + data[at:]
    raise ValueError("XMP can be added to JPEG or PNG files only")


def read_digital_source_type(data: bytes) -> str | None:
    """The `DigitalSourceType` in the file's XMP packet, or None when it has none."""
    for packet in _xmp_packets(data):
        found = _SOURCE_TYPE.search(packet)
        if found:
            return (found.group(1) or found.group(2)).decode("utf-8", "replace").strip()
    return None


def _xmp_packets(data: bytes):
    if data.startswith(PNG_SIGNATURE):
        for kind, body in _png_chunks(data):
            if kind == b"iTXt" and body.startswith(XMP_PNG_KEYWORD + b"\x00"):
                yield body[len(XMP_PNG_KEYWORD) + 5 :]  # keyword, NUL, flag, method, empty language and translation
    elif data.startswith(b"\xff\xd8"):
        for marker, body in _jpeg_segments(data):
            if marker == 0xE1 and body.startswith(XMP_JPEG_HEADER):
                yield body[len(XMP_JPEG_HEADER) :]


def _jpeg_segments(data: bytes):
    """(marker, body) of each segment before the image data."""
    position = 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xDA:  # start of scan: metadata ends here
            return
        length = struct.unpack(">H", data[position + 2 : position + 4])[0]
        yield marker, data[position + 4 : position + 2 + length]
        position += 2 + length


def _png_chunks(data: bytes):
    position = len(PNG_SIGNATURE)
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        yield kind, data[position + 8 : position + 8 + length]
        position += 12 + length


def _insert_png_chunk(data: bytes, kind: bytes, body: bytes) -> bytes:
    """Insert a chunk right after IHDR (the first chunk)."""
    ihdr_end = len(PNG_SIGNATURE) + 12 + struct.unpack(">I", data[8:12])[0]
    chunk = struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return data[:ihdr_end] + chunk + data[ihdr_end:]
