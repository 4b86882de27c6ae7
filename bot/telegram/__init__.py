"""The Telegram adapter: photos in, contact sheet and buttons out, the changed photo back.

A user sends a photo (or an image file, which keeps full quality). The bot answers
"working…" at once, follows the analysis job, and sends the numbered contact sheet
with an inline keyboard: one ✅/🔒 button per face (20 per page, ◀ ▶ between pages),
"keep all", "hide all", the modes, and "go". Taps and typed numbers (`1 3`, `1번 3번`,
`모두`, `없음`) edit that one message in place. "Go" shows the queue position in one
message, edited at most every few seconds, then sends the result as a photo (to view)
and as a file (full quality, no EXIF), and the photo is deleted.

This package only translates: the conversation's states live in `bot.session`
(`Conversation`, one JSON record per user in Redis), so there is no
`ConversationHandler` here. One module per job:

- `handlers`: one callback per user action (a command, a photo, typed text, each
  button action), each one `Conversation` call whose replies go to `render`;
- `render`: `render(screen, replies)`, the one place each reply kind is shown;
- `keyboard`: the sheet's inline keyboard, its caption and the callback data;
- `follow`: the background loop that polls a running job and renders what changed;
- `transport`: flood limits (`RetryAfterLimiter` waits `retry_after` and sends the
  same request again) and per-user ordering (different users' updates run
  concurrently, one user's in order);
- `app`: building the Application, polling or the webhook, stopping.

Running it inside an existing asyncio loop (next to the Kakao aiohttp server):

    application = build_application(config, conversation)
    await start_application(application, config)  # initialize, start, poll (or webhook)
    ...                                            # serve aiohttp, wait for a signal
    await stop_application(application)            # stop receiving, stop, shut down

or, spelled out (the customwebhookbot/starlettebot shape):

    async with application:
        await application.start()
        await start_receiving(application, config.telegram)  # start_polling, or setWebhook
        ...
        await stop_receiving(application)
        await application.stop()
"""

from bot.telegram.app import (
    add_webhook_route,
    build_application,
    start_application,
    start_receiving,
    stop_application,
    stop_receiving,
)

__all__ = ["add_webhook_route", "build_application", "start_application", "start_receiving", "stop_application", "stop_receiving"]
