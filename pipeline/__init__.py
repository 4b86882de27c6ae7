"""A pure image library: find faces, draw the contact sheet, change faces.

It knows nothing of Redis, rq or chat. Load the models once with
`pipeline.models.load_models` and pass them to `pipeline.analysis.analyze_photo`
and `process_photo`. Nothing is imported here, so light modules (`types`,
`errors`, `selection`, `config`) can be used without the ML stack.
"""

import os

# OpenMP threads that spin while idle steal the CPU from the next model (and from
# other workers on the machine); it must be set before torch loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
