"""The chat process never loads the ML stack: it only talks to the queue."""

import subprocess
import sys

from tests.helpers import PROJECT_ROOT

HEAVY_MODULES = {"torch", "onnxruntime", "cv2", "albumentations", "dlib"}


def test_bot_imports_no_ml_library():
    code = (
        "import sys, bot.telegram, bot.kakao, bot.__main__;"
        f"print(sorted(set({sorted(HEAVY_MODULES)!r}) & {{m.split('.')[0] for m in sys.modules}}))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
