"""The KakaoTalk channel: a Kakao i Open Builder skill server over the shared session.

`create_app(config, conversation)` builds the aiohttp application; see `app.py`
for its routes, `skill.py` for how answers meet Kakao's 5-second limit and the
callback, `images.py` for the image URLs Kakao fetches, and `responses.py` for
the 2.0 JSON and `check_response`.
"""

from bot.kakao.app import create_app
from bot.kakao.responses import check_response
from bot.kakao.skill import SkillLimits

__all__ = ["SkillLimits", "check_response", "create_app"]
