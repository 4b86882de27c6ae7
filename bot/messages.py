"""Every text the bots send, in Korean and English, keyed by name.

`text(key, language, **values)` picks the language ("ko" or "en"; anything else
falls back to Korean, since most of our users are Korean) and fills in values.
Button labels are kept to 14 characters or fewer (KakaoTalk's limit).
"""

from __future__ import annotations

LANGUAGES = ("ko", "en")
DEFAULT_LANGUAGE = "ko"

TEXTS: dict[str, dict[str, str]] = {
    "start": {
        "ko": "안녕하세요! 사진 속 얼굴을 지켜 드리는 봇입니다.\n"
        "사진을 보내 주시면 얼굴마다 번호를 붙여 보여 드려요. 남길 얼굴을 고르면 나머지 얼굴을 가려 드립니다.\n"
        "원본 화질을 원하시면 사진을 '파일'로 보내 주세요. /help 도움말 · /privacy 개인정보",
        "en": "Hi! I protect the faces in your photos.\n"
        "Send me a photo and I will number every face. Pick the faces to keep and I will hide the others.\n"
        "For full quality, send the photo as a file. /help for help · /privacy for privacy",
    },
    "help": {
        "ko": "사용법\n1. 사진을 보내세요 (JPEG, PNG, WebP · 사진 한 장씩).\n"
        "2. 번호가 붙은 얼굴 목록이 오면, 버튼을 눌러 남길 얼굴(✅)과 가릴 얼굴(🔒)을 고르세요.\n"
        "   번호를 직접 입력해도 됩니다: “1 3”, “1,3”, “1번 3번”, “모두”, “없음”.\n"
        "3. 방식을 고르고(모자이크 등) '시작'을 누르세요.\n"
        "명령어: /cancel 취소 · /privacy 개인정보 · /lang 언어 변경",
        "en": "How it works\n1. Send a photo (JPEG, PNG or WebP, one at a time).\n"
        "2. On the numbered sheet, tap faces to keep (✅) or hide (🔒).\n"
        "   Or type numbers: “1 3”, “1,3”, “all”, “none”.\n"
        "3. Pick a mode (blur, ...) and tap Go.\n"
        "Commands: /cancel · /privacy · /lang",
    },
    "privacy": {
        "ko": "개인정보 안내\n- 보내신 사진과 결과는 처리에만 쓰이고, 최대 {ttl_minutes}분 뒤 자동으로 지워집니다. 결과를 보내 드리면 바로 지웁니다.\n"
        "- 사진은 로그에 남기지 않습니다.\n- 결과 사진에는 EXIF(위치, 기기 정보)가 없습니다.\n"
        "- 얼굴을 AI로 바꾸거나 복원한 결과에는 그렇다는 표시가 들어갑니다: 캡션, 원본 화질 파일의 콘텐츠 자격 증명(C2PA, IPTC), "
        "그리고 얼굴이 너무 작지 않으면 다시 압축해도 남는 보이지 않는 워터마크. 모자이크 결과에는 '편집됨'만 표시합니다. 이 표시에 당신의 정보(ID, 위치, 원본 사진)는 들어가지 않습니다.\n"
        "- 다른 사람은 당신의 사진을 볼 수도, 버튼을 누를 수도 없습니다.",
        "en": "Privacy\n- Your photo and its result are used only to process it, and are deleted after at most {ttl_minutes} minutes, right after delivery at the latest.\n"
        "- Photos never appear in logs.\n- Results carry no EXIF (no location, no device data).\n"
        "- Faces replaced or restored by AI are labelled as such: in the caption, in the full-quality file's Content Credentials "
        "(C2PA, IPTC), and by an invisible watermark in the AI-made faces that survives recompression unless they are tiny. Blurred results say only 'edited'. "
        "None of these labels holds anything about you (no id, location or original photo).\n"
        "- Nobody else can see your photo or press your buttons.",
    },
    "lang_set": {"ko": "이제 한국어로 말할게요.", "en": "I will speak English from now on."},
    "working": {"ko": "사진을 받았어요. 얼굴을 찾는 중입니다… ⏳", "en": "Got your photo. Looking for faces… ⏳"},
    "queued": {"ko": "대기 중입니다: {position}번째 순서예요… ⏳", "en": "Waiting in line: you are number {position}… ⏳"},
    "processing": {"ko": "얼굴을 처리하는 중입니다… ⏳", "en": "Changing the faces… ⏳"},
    "sheet_caption": {
        "ko": "얼굴 {count}개를 찾았어요. ✅ 남길 얼굴 / 🔒 가릴 얼굴\n버튼을 누르거나 번호를 입력해(예: “1 3”) 고른 뒤 '시작'을 누르세요.",
        "en": "Found {count} faces. ✅ keep / 🔒 hide\nTap the buttons or type numbers (e.g. “1 3”), then tap Go.",
    },
    "sheet_caption_one": {
        "ko": "얼굴 1개를 찾았어요. ✅ 남기기 / 🔒 가리기를 고른 뒤 '시작'을 누르세요.",
        "en": "Found 1 face. Choose ✅ keep or 🔒 hide, then tap Go.",
    },
    "selection": {
        "ko": "남길 얼굴: {kept} · 가릴 얼굴: {changed} · 방식: {mode}",
        "en": "Keep: {kept} · Hide: {changed} · Mode: {mode}",
    },
    "no_faces": {"ko": "사진에서 얼굴을 찾지 못했어요. 다른 사진을 보내 주세요.", "en": "I found no faces in this photo. Try another one."},
    "result_caption": {"ko": "완료! 🔒 {changed}개의 얼굴을 가렸어요.", "en": "Done! {changed} faces hidden."},
    "result_blurred_instead": {
        "ko": "{faces}번 얼굴은 안전하게 바꿀 수 없어서 (너무 작거나, 옆을 보거나, 가려져 있어요) 모자이크했어요.",
        "en": "Faces {faces} could not be changed safely (too small, turned away or covered), so they were blurred.",
    },
    "result_left_as_they_were": {
        "ko": "{faces}번 얼굴은 마스크가 없거나 너무 작아서 그대로 두었어요.",
        "en": "Faces {faces} wear no mask (or are too small or turned away to unmask), so they were left as they were.",
    },
    "result_made_by_ai": {
        "ko": "🤖 바뀐 얼굴은 AI가 만든, 실제로 없는 사람의 얼굴이에요.",
        "en": "🤖 The changed faces were replaced by AI-made faces of people who do not exist.",
    },
    "result_made_by_ai_unmask": {
        "ko": "🤖 마스크에 가려졌던 부분은 AI가 복원해 그린 것이라 실제 얼굴과 다를 수 있어요.",
        "en": "🤖 What the masks covered was restored by AI, so it may differ from the real faces.",
    },
    "result_document": {"ko": "원본 화질 파일 (EXIF 없음)", "en": "Full quality file (no EXIF)"},
    "result_document_credentials": {
        "ko": "원본 화질 파일 (EXIF 없음). 어떻게 편집했는지 밝히는 콘텐츠 자격 증명(C2PA)이 들어 있어요.",
        "en": "Full quality file (no EXIF). It carries Content Credentials (C2PA) that say how it was edited.",
    },
    "nothing_to_change": {
        "ko": "모든 얼굴을 남기도록 고르셨어요. 가릴 얼굴을 하나 이상 골라 주세요.",
        "en": "Every face is set to keep. Pick at least one face to hide.",
    },
    "busy": {
        "ko": "이전 사진을 처리하는 중이에요. 사진은 한 장씩 보내 주세요. 취소하려면 /cancel",
        "en": "Still working on your previous photo: one photo at a time. /cancel to stop it.",
    },
    "album": {
        "ko": "사진은 한 장씩 처리해요. 첫 번째 사진만 처리합니다.",
        "en": "One photo at a time: I will process the first photo only.",
    },
    "unmask_selected": {
        "ko": "마스크를 쓴 얼굴 {count}개를 고쳐 드릴게요. 마스크가 없는 얼굴은 그대로 둡니다. 바꾸려면 버튼을 누르세요.",
        "en": "I will restore the {count} masked faces and leave the faces without a mask as they are. Tap to change.",
    },
    "no_masks": {
        "ko": "이 사진에는 마스크를 쓴 얼굴이 없어요. 다른 방식을 골라 주세요.",
        "en": "No face in this photo wears a mask. Please pick another mode.",
    },
    "cancelled": {"ko": "취소했어요. 사진은 지웠습니다.", "en": "Cancelled. Your photo is deleted."},
    "nothing_to_cancel": {"ko": "취소할 작업이 없어요.", "en": "There is nothing to cancel."},
    "expired": {
        "ko": "이 사진은 만료되어 지워졌어요. 사진을 다시 보내 주세요.",
        "en": "This photo has expired and was deleted. Please send it again.",
    },
    "not_yours": {"ko": "이 버튼은 사용할 수 없어요.", "en": "This button is not available."},
    "send_photo_first": {"ko": "먼저 사진을 보내 주세요.", "en": "Please send a photo first."},
    "bad_numbers": {
        "ko": "번호를 알아듣지 못했어요. 1부터 {count}까지 번호로 입력해 주세요. 예: “1 3”, “1번 3번”, “모두”, “없음”",
        "en": "I could not read that. Type face numbers from 1 to {count}, e.g. “1 3”, “all”, “none”.",
    },
    "mode_unavailable": {
        "ko": "'{mode}' 방식은 지금 쓸 수 없어요. 쓸 수 있는 방식: {available}. 모자이크는 언제나 됩니다.",
        "en": "The '{mode}' mode is not available right now. Available: {available}. Blur always works.",
    },
    "too_big_file": {
        "ko": "파일이 너무 커요 ({size_mb} MB). {limit_mb} MB 이하로 보내 주세요.",
        "en": "The file is too large ({size_mb} MB). Please send at most {limit_mb} MB.",
    },
    "not_an_image": {
        "ko": "사진 파일이 아니에요. JPEG, PNG, WebP 사진을 보내 주세요.",
        "en": "That is not a photo. Please send a JPEG, PNG or WebP image.",
    },
    "unsupported_format": {
        "ko": "이 형식은 지원하지 않아요. JPEG, PNG, WebP 사진을 보내 주세요.",
        "en": "This format is not supported. Please send a JPEG, PNG or WebP photo.",
    },
    "corrupt": {
        "ko": "사진 파일이 손상되어 열 수 없어요. 다른 파일을 보내 주세요.",
        "en": "The photo file is damaged and cannot be opened. Please send another file.",
    },
    "empty": {"ko": "빈 파일이에요. 사진을 보내 주세요.", "en": "The file is empty. Please send a photo."},
    "too_large": {
        "ko": "사진이 너무 커요 (최대 {max_megapixels}메가픽셀). 크기를 줄여 다시 보내 주세요.",
        "en": "The photo is too large (at most {max_megapixels} megapixels). Please send a smaller one.",
    },
    "failed": {
        "ko": "죄송해요, 사진을 처리하지 못했어요. 잠시 뒤 다시 보내 주세요.",
        "en": "Sorry, something went wrong with this photo. Please try again in a moment.",
    },
    "too_many_faces_typed": {
        "ko": "얼굴이 많아서 버튼은 {per_page}개씩 보여 드려요. ◀ ▶로 넘기거나 번호를 입력하세요.",
        "en": "Many faces: the buttons show {per_page} at a time. Use ◀ ▶ or type numbers.",
    },
    "error": {
        "ko": "죄송해요, 봇에 문제가 생겼어요. 잠시 뒤 다시 해 주세요. 처음부터 하려면 /cancel",
        "en": "Sorry, something went wrong on my side. Please try again in a moment, or /cancel to start over.",
    },
    "lang_usage": {"ko": "언어: /lang ko (한국어) 또는 /lang en (English)", "en": "Language: /lang en (English) or /lang ko (한국어)"},
    "command_start": {"ko": "시작하기", "en": "Start"},
    "command_help": {"ko": "사용법", "en": "How it works"},
    "command_cancel": {"ko": "취소하고 사진 지우기", "en": "Cancel and delete the photo"},
    "command_privacy": {"ko": "개인정보 안내", "en": "What we keep, and for how long"},
    "command_lang": {"ko": "언어 바꾸기 (ko/en)", "en": "Change language (en/ko)"},
    "button_keep_all": {"ko": "✅ 모두 남기기", "en": "✅ Keep all"},
    "button_change_all": {"ko": "🔒 모두 가리기", "en": "🔒 Hide all"},
    "button_go": {"ko": "▶️ 시작", "en": "▶️ Go"},
    "button_previous": {"ko": "◀ 이전", "en": "◀ Prev"},
    "button_next": {"ko": "다음 ▶", "en": "Next ▶"},
    "button_show_result": {"ko": "결과 보기", "en": "Show result"},
    "mode_blur": {"ko": "모자이크", "en": "Blur"},
    "mode_replace": {"ko": "가상 얼굴", "en": "Replace"},
    "mode_unmask": {"ko": "마스크 벗기기", "en": "Unmask"},
    "none_listed": {"ko": "없음", "en": "none"},
    # KakaoTalk only (bot/kakao): card titles ≤ 50 characters, button labels ≤ 14.
    "kakao_wait": {"ko": "잠시만 기다려 주세요… ⏳", "en": "One moment… ⏳"},
    "kakao_ask_again": {
        "ko": "조금 뒤 '결과 보기'를 누르거나 아무 메시지나 보내 주세요.",
        "en": "Tap 'Show result' or send any message in a moment.",
    },
    "kakao_still_working": {
        "ko": "아직 처리 중이에요. 조금 뒤 '결과 보기'를 눌러 주세요.",
        "en": "Still working on it. Tap 'Show result' in a moment.",
    },
    "kakao_foreign_host": {
        "ko": "이 주소의 사진은 받을 수 없어요. 카카오톡에서 사진을 직접 보내 주세요.",
        "en": "I can't take photos from that address. Please send the photo itself in KakaoTalk.",
    },
    "kakao_download_failed": {
        "ko": "사진을 내려받지 못했어요. 사진을 다시 보내 주세요.",
        "en": "I could not download the photo. Please send it again.",
    },
    "kakao_sheet_alt": {"ko": "번호가 붙은 얼굴 목록", "en": "The numbered faces"},
    "kakao_result_alt": {"ko": "얼굴을 가린 사진", "en": "The photo with faces hidden"},
    "kakao_result_link": {"ko": "원본 화질로 보기 ({minutes}분 동안): {url}", "en": "Full quality (for {minutes} minutes): {url}"},
    "kakao_result_link_credentials": {
        "ko": "원본 화질로 보기 ({minutes}분 동안, 편집 내역을 밝히는 콘텐츠 자격 증명(C2PA) 포함): {url}",
        "en": "Full quality, with Content Credentials (C2PA) that say how it was edited (for {minutes} minutes): {url}",
    },
    "kakao_card_kept": {"ko": "✅ {number}번 · 남길 얼굴", "en": "✅ {number} · keep"},
    "kakao_card_changed": {"ko": "🔒 {number}번 · 가릴 얼굴", "en": "🔒 {number} · hide"},
    "kakao_button_keep": {"ko": "✅ 남기기", "en": "✅ Keep"},
    "kakao_button_change": {"ko": "🔒 가리기", "en": "🔒 Hide"},
    "kakao_command_keep": {"ko": "{number}번 남기기", "en": "keep {number}"},
    "kakao_command_change": {"ko": "{number}번 가리기", "en": "hide {number}"},
    "kakao_word_all": {"ko": "모두", "en": "all"},
    "kakao_word_none": {"ko": "없음", "en": "none"},
}


def normalize_language(code: str | None) -> str:
    """A Telegram/Kakao language code (e.g. "en-US", "ko") as one of ours."""
    short = (code or "").split("-")[0].lower()
    return short if short in LANGUAGES else DEFAULT_LANGUAGE


def text(key: str, language: str, **values: object) -> str:
    """The text for `key` in `language`, with `values` filled in."""
    variants = TEXTS[key]
    return variants.get(language, variants[DEFAULT_LANGUAGE]).format(**values)
