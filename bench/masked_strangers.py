"""dlib distances between different people, masked and bare, within each test photo (faces >= 24 px)."""
import sys; sys.path[0] = "/work/wt/s3-realism"
import numpy as np, itertools
from tests.helpers import DATA, cached_models, photo_rgb
from pipeline.analysis import find_faces
from pipeline.face.crop import prepare_face, MIN_FACE_PX
from pipeline.regions import face_scale
from pipeline.modes.replace.identity import describe_face, descriptor_distance
models = cached_models(); r = models.replace.get()
masked, bare, mixed = [], [], []
for path in sorted(DATA.iterdir()):
    if path.suffix not in (".jpg", ".png"): continue
    image = photo_rgb(path.name); faces, _ = find_faces(image, models)
    ds = []
    for f in faces:
        if face_scale(f) < MIN_FACE_PX: continue
        p = prepare_face(image, f, r.predictor); ds.append((f.wears_mask, describe_face(r.recognizer, p.crop, p.points)))
    for (ma, a), (mb, b) in itertools.combinations(ds, 2):
        (masked if ma and mb else bare if not ma and not mb else mixed).append(descriptor_distance(a, b))
for name, d in (("masked-masked", masked), ("bare-bare", bare), ("masked-bare", mixed)):
    d = np.array(d); print(name, len(d), "percentiles 1,5,10,50:", np.round(np.percentile(d, [1, 5, 10, 50]), 3) if len(d) else "-", "share<0.6 %.2f share<0.7 %.2f" % ((d < 0.6).mean(), (d < 0.7).mean()) if len(d) else "")
