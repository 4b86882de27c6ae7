"""Fetching a user's photo from Kakao's image hosts, and nothing else (no SSRF).

A URL is fetched only when its scheme is http or https and its host is exactly
one of the configured hosts (`KAKAO_IMAGE_HOSTS`). Redirects are followed by
hand, and each hop must pass the same check. The size limit holds both on the
announced Content-Length and on the bytes actually received.
"""

from __future__ import annotations

import asyncio
from typing import Collection

import aiohttp
from yarl import URL

MAX_REDIRECTS = 3
"""How many redirects (each to an allowed host) one download may follow."""

CHUNK_BYTES = 64 * 1024
REDIRECT_STATUSES = {301, 302, 303, 307, 308}


class PhotoRefused(Exception):
    """The photo was not fetched or not kept; `code` says why, for the user's text.

    Codes: "foreign_host" (never fetched), "too_big" (`size_bytes` is what we
    know of the size), "download_failed" (an error status, a timeout, a network error).
    """

    def __init__(self, code: str, size_bytes: int = 0):
        super().__init__(code)
        self.code = code
        self.size_bytes = size_bytes


def allowed_url(url: str | URL, hosts: Collection[str]) -> URL | None:
    """The parsed URL when its scheme is http(s) and its host is exactly one of `hosts`, else None."""
    try:
        parsed = url if isinstance(url, URL) else URL(url)
    except (TypeError, ValueError):
        return None
    if parsed.scheme not in ("http", "https") or parsed.user or parsed.password or not parsed.host:
        return None
    allowed = {host.strip().lower().rstrip(".") for host in hosts}
    return parsed if parsed.host.lower().rstrip(".") in allowed else None


async def download_photo(
    session: aiohttp.ClientSession,
    url: str,
    hosts: Collection[str],
    max_bytes: int,
    timeout_seconds: float,
) -> bytes:
    """The body of `url`, at most `max_bytes` long, within `timeout_seconds` in all.

    Raises:
        PhotoRefused: the host is not allowed (nothing is fetched), the photo is too
            big, or the download failed.
    """
    target = allowed_url(url, hosts)
    if target is None:
        raise PhotoRefused("foreign_host")
    try:
        async with asyncio.timeout(timeout_seconds):
            for _ in range(MAX_REDIRECTS + 1):
                async with session.get(target, allow_redirects=False) as response:
                    if response.status in REDIRECT_STATUSES:
                        location = response.headers.get("Location", "")
                        target = allowed_url(target.join(URL(location)), hosts) if location else None
                        if target is None:
                            raise PhotoRefused("foreign_host")
                        continue
                    if response.status != 200:
                        raise PhotoRefused("download_failed")
                    return await _read_limited(response, max_bytes)
            raise PhotoRefused("download_failed")
    except (aiohttp.ClientError, TimeoutError, ValueError):
        raise PhotoRefused("download_failed") from None


async def _read_limited(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    announced = response.content_length
    if announced is not None and announced > max_bytes:
        raise PhotoRefused("too_big", announced)
    received = bytearray()
    async for chunk in response.content.iter_chunked(CHUNK_BYTES):
        received += chunk
        if len(received) > max_bytes:
            raise PhotoRefused("too_big", len(received))
    return bytes(received)
