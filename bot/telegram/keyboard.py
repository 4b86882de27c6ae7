"""The sheet's inline keyboard and caption, and the callback data its buttons carry.

Buttons carry `<action>:<photo id>[:<argument>]`. The owner is always the person
who pressed, so a button can only act on the presser's own session; a button of
an older photo, or of someone else's, is answered "this photo has expired".
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.messages import text
from bot.session import Reply, Selection
from pipeline.modes import MODE_NAMES

FACES_PER_PAGE = 20
FACES_PER_ROW = 5
CAPTION_MAX_CHARS = 1024

# Button actions, the first field of callback_data.
TOGGLE, KEEP_ALL, CHANGE_ALL, MODE, PAGE, GO = "t", "a", "n", "m", "p", "g"
PHOTO_ID_PATTERN = r"[A-Za-z0-9_-]{1,40}"


def callback_pattern(action: str, argument: str = "") -> str:
    """The regular expression of one action's callback data; `argument` is the pattern of its argument."""
    return f"^{action}:{PHOTO_ID_PATTERN}" + (f":{argument}$" if argument else "$")


def callback_data(action: str, photo_id: str, argument: object = "") -> str:
    """Short button data that names the photo, so a stale button is recognised."""
    return f"{action}:{photo_id}:{argument}" if argument != "" else f"{action}:{photo_id}"


def parse_callback_data(data: str) -> tuple[str, str, str]:
    """(action, photo id, argument) of a button; the argument may be ""."""
    action, photo_id, *rest = data.split(":")
    return action, photo_id, rest[0] if rest else ""


def build_keyboard(selection: Selection, language: str) -> InlineKeyboardMarkup:
    """Face toggles for the current page, paging, keep/hide all, the modes and go."""
    photo_id = selection.photo_id
    numbers = list(selection.page_numbers(FACES_PER_PAGE))
    rows = [
        [
            InlineKeyboardButton(
                f"{'✅' if number in selection.keep else '🔒'} {number}",
                callback_data=callback_data(TOGGLE, photo_id, number),
            )
            for number in numbers[start : start + FACES_PER_ROW]
        ]
        for start in range(0, len(numbers), FACES_PER_ROW)
    ]
    pages = selection.page_count(FACES_PER_PAGE)
    if pages > 1:
        page = selection.page
        paging = [InlineKeyboardButton(f"{page + 1}/{pages}", callback_data=callback_data(PAGE, photo_id, page))]
        if page > 0:
            paging.insert(0, InlineKeyboardButton(text("button_previous", language), callback_data=callback_data(PAGE, photo_id, page - 1)))
        if page < pages - 1:
            paging.append(InlineKeyboardButton(text("button_next", language), callback_data=callback_data(PAGE, photo_id, page + 1)))
        rows.append(paging)
    rows.append(
        [
            InlineKeyboardButton(text("button_keep_all", language), callback_data=callback_data(KEEP_ALL, photo_id)),
            InlineKeyboardButton(text("button_change_all", language), callback_data=callback_data(CHANGE_ALL, photo_id)),
        ]
    )
    rows.append(
        [
            InlineKeyboardButton(
                ("• " if mode == selection.mode else "") + text(f"mode_{mode}", language),
                callback_data=callback_data(MODE, photo_id, mode),
            )
            for mode in MODE_NAMES
        ]
    )
    rows.append([InlineKeyboardButton(text("button_go", language), callback_data=callback_data(GO, photo_id))])
    return InlineKeyboardMarkup(rows)


def sheet_caption(reply: Reply, language: str) -> str:
    """The caption of a SHEET or SELECTION reply: what to do, paging help for many faces, and the current choice."""
    parts = [reply.text]
    if reply.selection.face_count > FACES_PER_PAGE:
        parts.append(text("too_many_faces_typed", language, per_page=FACES_PER_PAGE))
    parts.append(reply.summary)
    return "\n\n".join(parts)[:CAPTION_MAX_CHARS]
