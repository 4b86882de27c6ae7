"""The pipeline stays a pure image library."""

import subprocess
import sys

from tests.helpers import PROJECT_ROOT


def test_pipeline_imports_no_queue_or_chat_library():
    code = (
        "import sys, pipeline, pipeline.__main__, pipeline.analysis;"
        "bad = {'redis', 'rq', 'telegram', 'aiohttp'} & {m.split('.')[0] for m in sys.modules};"
        "print(sorted(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
