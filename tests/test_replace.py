"""Replace mode: non-kept faces become synthetic people; kept faces and the rest of the photo stay."""

from collections import Counter
from dataclasses import replace as with_fields
from functools import lru_cache

import cv2
import numpy as np

from pipeline.analysis import available_modes, change_faces_reported, find_faces
from pipeline.face.crop import MIN_EYE_RATIO, MIN_FACE_PX, prepare_face
from pipeline.modes import replace as replace_mode
from pipeline.modes.replace import donor_attempts
from pipeline.face.colour import edge_matched_light, iris_colour, masked_stats, match_sharpness, to_lab, transfer_colour
from pipeline.face.texture import laplacian_level
from pipeline.face.donors import Donor, Target, donor_beards, facial_hair, median_skin_lab, rank_donors
from pipeline.modes.replace.identity import MASKED_MIN_DISTANCE, MIN_DISTANCE, describe_face
from pipeline.face.landmarks import JAW, FaceFeatures, eye_band, eye_ratio, feature_mask
from pipeline.modes.replace.warp import donor_layout
from pipeline.face.covering import covering_in_crop, find_covering
from pipeline.types import MASKED_THRESHOLD, ModeOutput
from pipeline.regions import face_bounds
from tests.helpers import cached_models, photo_rgb

CROWD = "kagglemask_maksssksksss389.jpg"  # 12 faces, 9 of them masked


@lru_cache(maxsize=4)
def replaced(name: str, keep: frozenset = frozenset()):
    image = photo_rgb(name)
    faces, _ = find_faces(image, cached_models())
    result, reports = change_faces_reported(image, faces, keep, "replace", cached_models())
    return image, faces, result, {report.number: report for report in reports}


def test_replace_is_available_when_its_models_are_installed():
    assert available_modes(cached_models())["replace"] is None


def test_replaced_faces_change_and_the_rest_of_the_photo_stays():
    image, faces, result, reports = replaced("fr_two_people.jpg")
    outside = np.ones(image.shape[:2], dtype=bool)
    for face in faces:
        assert reports[face.number].mode == "replace", reports[face.number]
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        assert np.abs(image[y1:y2, x1:x2].astype(int) - result[y1:y2, x1:x2].astype(int)).mean() > 4
        x1, y1, x2, y2 = face_bounds(face, (image.shape[1], image.shape[0]), margin=0.5 * face.height)
        outside[y1:y2, x1:x2] = False
    assert np.array_equal(image[outside], result[outside])


def test_replaced_faces_are_still_faces_of_other_people():
    image, faces, result, reports = replaced("fr_two_people.jpg")
    found, _ = find_faces(result, cached_models())
    assert len(found) == len(faces)
    models = cached_models().replace.get()
    for face in faces:
        assert reports[face.number].passed and reports[face.number].distance >= MIN_DISTANCE
        before = prepare_face(image, face, models.predictor)
        after = prepare_face(result, face, models.predictor)
        distance = np.linalg.norm(describe_face(models.recognizer, after.crop, after.points) - describe_face(models.recognizer, before.crop, before.points))
        assert distance > 0.6, f"face {face.number} still looks like the original ({distance:.2f})"


def test_clean_shaven_men_stay_clean_shaven():
    # Warped onto the original's feature layout, only the pool's bearded man was far enough from
    # Obama for the anonymity check, so Obama came back bearded. Measured here: both originals and
    # both replacements 0.0; the bearded replacement 0.49.
    models = cached_models().replace.get()
    image, faces, result, reports = replaced("fr_two_people.jpg")
    for face in faces:
        assert reports[face.number].mode == "replace", reports[face.number]
        for photo, what in ((image, "original"), (result, "replacement")):
            prepared = prepare_face(photo, face, models.predictor)
            lab = to_lab(prepared.crop)
            hair = facial_hair(lab, prepared.points, median_skin_lab(lab, eye_band(lab.shape[:2], prepared.points)))
            assert hair < 0.25, f"face {face.number}: the {what} has facial hair ({hair:.2f})"


def test_faces_replaced_in_a_black_and_white_photo_are_black_and_white():
    # The donor's colour contrast used to be kept at 70% or more: brown faces in the Solvay photo.
    image = np.repeat(photo_rgb("fr_two_people.jpg").mean(axis=2, keepdims=True).round().astype(np.uint8), 3, axis=2)
    faces, _ = find_faces(image, cached_models())
    result, reports = change_faces_reported(image, faces, (), "replace", cached_models())
    assert all(report.mode == "replace" for report in reports), reports
    colour = np.abs(result.astype(int) - result.mean(axis=2, keepdims=True)).max()
    assert colour <= 2, f"colour of up to {colour} levels in a black-and-white photo"


def test_the_replacement_keeps_the_jaw_line_and_takes_the_donors_features():
    rng = np.random.default_rng(1)
    target_points = rng.uniform(0, 100, (68, 2))
    donor_points = rng.uniform(0, 100, (68, 2))
    layout = donor_layout(donor_points, target_points)
    assert np.array_equal(layout[JAW], target_points[JAW])
    inner = [i for i in range(68) if i not in JAW]
    # the donor's features, moved, turned and scaled as one piece: all their distances keep their ratios
    ratios = np.linalg.norm(layout[inner][:, None] - layout[inner][None], axis=-1)[np.triu_indices(len(inner), 1)]
    ratios /= np.linalg.norm(donor_points[inner][:, None] - donor_points[inner][None], axis=-1)[np.triu_indices(len(inner), 1)]
    assert np.allclose(ratios, ratios[0])
    assert not np.allclose(layout[inner], target_points[inner], atol=5)


def test_donors_have_the_faces_gender_and_differ_within_a_photo():
    _, faces, _, reports = replaced("fr_two_people.jpg")
    pool = {donor.id: donor for donor in cached_models().replace.get().pool.donors}
    identities = []
    for face in faces:
        donor = pool[reports[face.number].donor.removesuffix(" (mirrored)")]
        assert donor.gender == face.gender == "male"
        identities.append(donor.identity)
    assert len(set(identities)) == len(identities)


def test_kept_faces_stay_pixel_identical_in_png():
    image = photo_rgb("skimage_astronaut.png")
    faces, _ = find_faces(image, cached_models())
    result, _ = change_faces_reported(image, faces, {faces[0].number}, "replace", cached_models())
    assert np.array_equal(image, result)


def test_small_faces_are_blurred_not_left_untouched():
    """Faces under MIN_FACE_PX are blurred (documented), never left as they were."""
    import cv2

    full = photo_rgb("fr_two_people.jpg")
    image = cv2.resize(full, (full.shape[1] // 9, full.shape[0] // 9), interpolation=cv2.INTER_AREA)
    faces, _ = find_faces(image, cached_models())
    assert faces and all(max(face.width, face.height) < MIN_FACE_PX for face in faces)
    result, reports = change_faces_reported(image, faces, set(), "replace", cached_models())
    for face, report in zip(faces, reports):
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        assert np.abs(image[y1:y2, x1:x2].astype(int) - result[y1:y2, x1:x2].astype(int)).mean() > 1, f"face {face.number} untouched"
        assert report.mode == "blur" and "too small" in report.reason


def test_no_donor_is_painted_over_a_face_mask():
    # The colour test let pale masks and the lips through: the donor's mouth and beard were
    # painted, half transparent, over the mask. Now the face above the mask is replaced and the
    # mask gets no donor pixels.
    image = photo_rgb(CROWD)
    faces, _ = find_faces(image, cached_models())
    changer = replace_mode.start(image, faces, (), cached_models())
    masked = [face for face in faces if face.mask >= MASKED_THRESHOLD]
    assert len(masked) >= 7
    for face in masked:
        screened = changer.screen(face)
        if isinstance(screened, ModeOutput):
            assert "face mask" in changer.reports[-1].reason or "turned" in changer.reports[-1].reason, changer.reports[-1]
            continue
        covering = find_covering(image, face.landmarks)
        covered = covering_in_crop(covering, screened.prepared.matrix, screened.mask.shape) > 0.5
        assert screened.mask[covered].max() < 0.05, f"face {face.number}: donor pixels over its mask"


def test_a_masked_face_under_a_cap_is_replaced_though_dlibs_points_collapse_onto_the_mask():
    # dlib fitted her whole face onto the mask, eyes on its top edge: the eye band measured no skin, and a plainly
    # visible face 96 px wide was blurred as "too covered".
    image, faces, result, reports = replaced("kagglemask_maksssksksss148.jpg")
    face = next(f for f in faces if f.number == 5)
    assert face.wears_mask and face.width >= 90
    assert reports[5].mode == "replace", reports[5].reason
    (left_x, left_y), (right_x, right_y) = np.round(face.landmarks[:2]).astype(int)
    eyes = np.s_[min(left_y, right_y) - 6 : max(left_y, right_y) + 6, left_x - 10 : right_x + 10]
    assert np.abs(result[eyes].astype(int) - image[eyes]).mean() > 10  # new eyes, not the old ones blurred or kept


def test_masked_faces_get_a_new_face_above_the_mask_and_keep_the_mask():
    # Every masked face was blurred as "too covered": in a masked crowd, replace mode was blur mode.
    checked = 0
    for name in (CROWD, "kagglemask_maksssksksss264.jpg"):
        image, faces, result, reports = replaced(name)
        masked = [face for face in faces if face.wears_mask and face.width >= 40 and eye_ratio(np.asarray(face.landmarks)) >= MIN_EYE_RATIO]
        replaced_faces = [face for face in masked if reports[face.number].mode == "replace"]
        assert masked and len(replaced_faces) >= 0.6 * len(masked), [reports[face.number] for face in masked]
        checked += len(replaced_faces)
        check_masks_kept(image, result, replaced_faces)
    assert checked >= 5


def check_masks_kept(image: np.ndarray, result: np.ndarray, faces) -> None:
    """Each face's mask is as it was, and its eyes are someone else's."""
    for face in faces:
        covering = find_covering(image, face.landmarks)
        covered = covering_in_crop(covering, np.array([[1.0, 0, 0], [0, 1.0, 0]]), image.shape[:2]) > 0.5
        assert np.abs(image[covered].astype(int) - result[covered].astype(int)).mean() < 1, f"face {face.number}: its mask changed"
        five = np.asarray(face.landmarks)
        left, right, y = five[:2, 0].min(), five[:2, 0].max(), int(five[:2, 1].mean())
        half = int(0.15 * (right - left)) + 1
        eyes = np.s_[max(0, y - half) : y + half, max(0, int(left) - half) : int(right) + half]
        assert np.abs(image[eyes].astype(int) - result[eyes].astype(int)).mean() > 4, f"face {face.number}: the same eyes"


def test_a_replaced_face_is_about_as_crisp_as_the_persons_own_face():
    # A donor resampled twice, or a pool crop upscaled onto a large face, kept a third to a half of the original
    # face's fine detail (Obama 1080p: 0.33, the astronaut: 0.47): a soft face pasted into a sharp photo.
    for name in ("fr_obama-1080p.jpg", "skimage_astronaut.png", "fr_two_people.jpg"):
        image, faces, result, reports = replaced(name)
        for face in faces:
            assert reports[face.number].mode == "replace"
            x1, y1, x2, y2 = (int(round(v)) for v in face.box)
            inner = np.s_[y1 + (y2 - y1) // 5 : y2 - (y2 - y1) // 5, x1 + (x2 - x1) // 5 : x2 - (x2 - x1) // 5]
            every = np.ones(image[inner].shape[:2], bool)
            ratio = laplacian_level(result[inner], every) / laplacian_level(image[inner], every)
            assert 0.6 <= ratio <= 1.5, f"{name} face {face.number}: {ratio:.2f} of the original's fine detail"


def test_faces_that_fail_the_anonymity_check_are_blurred_and_reported():
    image, faces, result, reports = replaced(CROWD)
    assert len(reports) == len(faces)
    for face in faces:
        report = reports[face.number]
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        assert np.abs(image[y1:y2, x1:x2].astype(int) - result[y1:y2, x1:x2].astype(int)).mean() > 1, f"face {face.number} untouched"
        if report.mode == "replace":
            assert report.passed and report.distance >= (MASKED_MIN_DISTANCE if face.wears_mask else MIN_DISTANCE)
        else:
            assert report.reason
    assert any(report.passed is False and report.mode == "blur" for report in reports.values())  # one failed the check itself


def make_donor(
    identity: str, gender: str, age: float, yaw: float = 0.0, mouth_open: float = 0.05, number: int = 0,
    eyes_open: float = 0.3, facial_hair: float = 0.0, smile: float = 1.0, expression: str = "",
) -> Donor:
    return Donor(
        id=f"{identity}-{number}", identity=identity, source="test", file="x.jpg", gender=gender, age=age,
        landmarks=((0.0, 0.0),) * 68, yaw=yaw, roll_degrees=0.0, mouth_open=mouth_open, smile=smile, eyes_open=eyes_open,
        facial_hair=facial_hair, expression=expression, skin_lab=(60.0, 12.0, 16.0), size_px=100.0,
    )


def target(gender="female", age=30.0, yaw=0.0, mouth_open=0.05, facial_hair=0.0) -> Target:
    return Target(gender, age, FaceFeatures(yaw, 0.0, mouth_open, 1.0, 80.0, 0.3), (60.0, 12.0, 16.0), 80.0, facial_hair)


def test_rank_donors_prefers_open_eyes_and_the_targets_facial_hair():
    donors = [make_donor("closed", "male", 40, eyes_open=0.1), make_donor("beard", "male", 40, facial_hair=1.0),
              make_donor("shaven", "male", 45)]  # fmt: skip
    assert rank_donors(donors, target("male", 40, facial_hair=0.0))[0].donor.identity == "shaven"
    assert rank_donors(donors, target("male", 40, facial_hair=1.0))[0].donor.identity == "beard"
    assert rank_donors(donors, target("male", 40, facial_hair=1.0))[-1].donor.identity == "closed"


def test_a_man_with_a_moustache_or_none_gets_no_full_beard_while_shaven_donors_are_left():
    # Solvay's moustached men (their moustache measure is 1 on the grey photo) got full beards: 3 of the first 4.
    donors = [make_donor("beard", "male", 40, facial_hair=1.0), make_donor("shaven", "male", 40, facial_hair=1.0)]
    beards = {"beard-0": 1.0, "shaven-0": 0.0}
    moustache = with_fields(target("male", 40, facial_hair=1.0), beard=0.0)
    twice_used = Counter({"shaven": 2})
    assert rank_donors(donors, moustache, twice_used, beards=beards)[0].donor.identity == "shaven"
    assert rank_donors(donors, with_fields(moustache, beard=1.0), beards=beards)[0].donor.identity == "beard"
    masked = with_fields(moustache, beard=None)  # the chin is under the mask, which stays: a beard cannot show
    assert rank_donors(donors, masked, twice_used, beards=beards)[0].donor.identity == "beard"


def test_the_pool_measures_its_bearded_man_as_bearded_and_no_other_man():
    pool = cached_models().replace.get().pool
    beards = donor_beards(pool)
    raw = {d.id: d.identity for d in pool.donors if d.gender == "male" and d.source.startswith("openpeople==")}
    frontal = [d.id for d in pool.donors if d.id in raw and abs(d.yaw) < 0.3]
    assert {raw[i] for i in frontal if beards[i] > 0.5} == {"openpeople:P005"}


def test_a_straight_face_gets_a_straight_donor_before_a_grinning_one_turned_like_it():
    # Biden (yaw 0.21, mouth 0.04 open, smile 0.88) was given a grinning selfie turned like him (the pool's numbers).
    donors = [make_donor("grin", "male", 30, yaw=0.23, mouth_open=0.12, smile=1.08, eyes_open=0.24),
              make_donor("straight", "male", 30, yaw=0.03, mouth_open=0.01, smile=0.94, eyes_open=0.27)]  # fmt: skip
    straight_faced = Target("male", 30, FaceFeatures(0.21, 0.0, 0.04, 0.88, 80.0, 0.24), (60.0, 12.0, 16.0), 80.0, 0.0)
    assert rank_donors(donors, straight_faced)[0].donor.identity == "straight"


def test_a_calm_face_gets_a_calm_crop_and_a_calm_person_again_before_a_grin():
    # Solvay's calm men came back grinning: 16 of 29 were given an acted "happy" crop (few identities are calm men).
    donors = [make_donor("a", "male", 40, smile=1.15, expression="happy"), make_donor("a", "male", 40, smile=0.85, number=1, expression="neutral"),
              make_donor("b", "male", 40, smile=1.15, expression="happy")]  # fmt: skip
    calm = Target("male", 40, FaceFeatures(0.0, 0.0, 0.05, 0.85, 80.0, 0.3), (60.0, 12.0, 16.0), 80.0, 0.0, beard=0.0)
    assert rank_donors(donors, calm)[0].key == ("a-1", False)
    used = (Counter({"a": 1}), Counter({("a-1", False): 1}))
    assert rank_donors(donors, calm, *used)[0].key == ("a-1", True)  # the same calm person mirrored, not a grin
    masked = with_fields(calm, beard=None)  # the mouth is under the mask, which stays: no grin can show
    assert rank_donors(donors, masked, *used)[0].donor.identity == "b"


def test_a_calm_face_gets_no_scowling_or_looking_aside_donor_while_others_are_left():
    # The masked runner (kagglemask 264 #7) was given a "confused" composite: knitted brows and lines between them
    # over her calm eyes, and next a "pensive" one looking down, eyes half shut. Eight years of age weigh less.
    donors = [make_donor("a-confused", "female", 30, expression="confused"), make_donor("b-pensive", "female", 30, expression="pensive"),
              make_donor("c-angry", "female", 30, expression="angry"), make_donor("d-calm", "female", 38, expression="neutral")]  # fmt: skip
    ranked = [c.donor.identity for c in rank_donors(donors, target())]
    assert ranked[0] == "d-calm" and ranked.index("b-pensive") < ranked.index("a-confused")


def test_classical_replace_tries_every_person_before_anyones_second_crop():
    donors = [make_donor("a", "female", 30, number=0), make_donor("a", "female", 30, number=1), make_donor("b", "female", 50)]
    attempts = donor_attempts(rank_donors(donors, target()), 4)
    assert [c.donor.identity for c in attempts[:2]] == ["a", "b"] and len({c.key for c in attempts}) == 4


def test_the_pool_marks_every_crop_of_its_bearded_man_and_no_other_man():
    pool = cached_models().replace.get().pool.donors
    men = [d for d in pool if d.gender == "male" and d.source.startswith("openpeople==")]  # the raw pool, not its new identities
    assert {d.identity for d in men if d.facial_hair > 0.5} == {"openpeople:P005"}
    assert all(d.facial_hair > 0.5 for d in men if d.identity == "openpeople:P005")


def test_sharpness_matching_does_not_blur_a_sharp_donor_for_its_shading():
    rng = np.random.default_rng(0)
    skin = np.clip(rng.normal(150, 6, (96, 96, 3)), 0, 255)  # the same fine texture in both
    rows, columns = np.mgrid[0:96, 0:96]
    shading = 70 * np.exp(-((rows - 40) ** 2 + (columns - 48) ** 2) / (2 * 12.0**2))  # a nose's shadow: coarse structure
    donor = np.clip(skin - shading[..., None], 0, 255).astype(np.uint8)
    skin = skin.astype(np.uint8)
    weights = np.zeros((96, 96), np.float32)
    weights[10:80, 10:86] = 1.0
    assert np.array_equal(match_sharpness(donor, skin, weights, work_scale=1.0), donor)
    assert not np.array_equal(match_sharpness(donor, cv2.GaussianBlur(skin, (0, 0), 2.0), weights, work_scale=1.0), donor)


def test_a_lined_donor_is_blurred_by_how_soft_the_photo_is_not_by_its_own_skin():
    face = np.full((96, 96, 3), 170, np.uint8)
    face[8:88:8, 8:88] = 60  # crisp features on smooth skin
    donor = np.clip(face + np.random.default_rng(0).normal(0, 4, (96, 96, 1)), 0, 255).astype(np.uint8)  # lined skin
    weights = np.ones((96, 96), np.float32)
    change = [
        np.abs(match_sharpness(donor, cv2.GaussianBlur(face, (0, 0), sigma) if sigma else face, weights, 1.0).astype(int) - donor).mean()
        for sigma in (0.0, 1.0, 2.0)
    ]
    assert change[0] < change[1] < change[2], change  # measured by skin texture, the sharp photo got more blur than the soft one


def test_rank_donors_keeps_gender_prefers_near_age_and_matches_pose_by_flipping():
    donors = [make_donor("a", "male", 30), make_donor("b", "female", 60), make_donor("c", "female", 32, yaw=0.4)]
    ranked = rank_donors(donors, target(age=30, yaw=-0.4))
    assert {c.donor.gender for c in ranked} == {"female"}
    assert (ranked[0].donor.identity, ranked[0].flip) == ("c", True)


def test_rank_donors_reuses_an_identity_only_after_all_are_used_and_then_another_image():
    donors = [make_donor("a", "female", 30, number=0), make_donor("a", "female", 30, mouth_open=0.3, number=1), make_donor("b", "female", 50)]
    ranked = rank_donors(donors, target(), used_identities=Counter({"a": 1}), used_images=Counter({("a-0", False): 1}))
    assert ranked[0].donor.identity == "b"
    ranked = rank_donors(donors, target(), used_identities=Counter({"a": 1, "b": 1}), used_images=Counter({("a-0", False): 1, ("b-0", False): 1}))
    assert ranked[0].key != ("a-0", False) and ranked[0].key != ("b-0", False)


def test_transfer_colour_gives_the_donor_the_targets_skin_statistics():
    rng = np.random.default_rng(0)
    donor = np.clip(rng.normal((200, 150, 120), 8, (64, 64, 3)), 0, 255).astype(np.uint8)
    target_image = np.clip(rng.normal((110, 80, 60), 8, (64, 64, 3)), 0, 255).astype(np.uint8)
    weights = np.ones((64, 64), dtype=np.float32)
    out = transfer_colour(donor, target_image, weights, weights, face_size=64)
    out_mean, _ = masked_stats(to_lab(out), weights)
    target_mean, _ = masked_stats(to_lab(target_image), weights)
    assert np.abs(out_mean - target_mean).max() < 2.0


def test_a_shadow_at_the_pastes_edge_carries_into_the_new_face_so_the_edge_shows_no_step():
    # The light transfer follows the face's shading at the scale of the whole face: a shadow under the hair at
    # the paste's edge stayed lit on the new face, and the edge showed as a step (kagglemask 389 #3, 264 #6).
    target = np.full((96, 96, 3), (200, 160, 140), np.uint8)
    target[:, :30] = (120, 90, 70)  # a shadow over the left edge
    new = np.full((96, 96, 3), (205, 165, 145), np.uint8)  # a lit donor
    mask = np.zeros((96, 96), np.float32)
    mask[20:76, 20:76] = 1.0
    features = np.zeros((96, 96), np.float32)
    features[40:50, 22:28] = 1.0  # an eye at the edge
    out = edge_matched_light(new, target, mask, features, face_size=64)

    def step(pixels):
        pasted = np.where(mask[..., None] > 0, pixels, target).astype(np.float32)
        return np.abs(pasted[25:35, 20:23].mean(axis=(0, 1)) - pasted[25:35, 17:20].mean(axis=(0, 1))).max()

    assert step(out) < 0.4 * step(new)
    assert np.array_equal(out[45:52, 45:52], new[45:52, 45:52])  # the middle is the new face's own
    change = np.abs(out.astype(np.int16) - new).mean(axis=-1)
    assert change[40:50, 22:28].mean() < 0.75 * change[26:34, 22:28].mean()  # its features take less than the skin beside


def test_the_persons_own_skin_is_not_carried_in_along_a_face_mask_they_keep():
    # Beside a kept face mask the person's own skin under the eyes came back with the light, and with it too much of
    # who they are: masked faces (kagglemask 52 #34) failed the anonymity check with every donor.
    target = np.full((96, 96, 3), (150, 110, 90), np.uint8)  # the person's skin
    target[60:] = (230, 230, 230)  # a white face mask
    new = np.full((96, 96, 3), (205, 165, 145), np.uint8)
    mask = np.zeros((96, 96), np.float32)
    mask[20:60, 20:76] = 1.0  # the face above the mask
    face_mask = np.zeros((96, 96), np.float32)
    face_mask[60:] = 1.0
    no_features = np.zeros((96, 96), np.float32)
    kept = edge_matched_light(new, target, mask, no_features, face_size=64, beside=face_mask)
    assert np.array_equal(kept[52:60, 40:56], new[52:60, 40:56])
    assert not np.array_equal(edge_matched_light(new, target, mask, no_features, face_size=64)[52:60, 40:56], new[52:60, 40:56])


def test_transfer_colour_keeps_a_donors_grey_eyes_grey_on_a_paler_face():
    rng = np.random.default_rng(0)
    donor = np.clip(rng.normal((200, 140, 100), 4, (64, 64, 3)), 0, 255).astype(np.uint8)  # warm, saturated skin
    donor[24:40, 24:40] = (120, 120, 120)  # a grey iris
    target_image = np.clip(rng.normal((200, 180, 165), 4, (64, 64, 3)), 0, 255).astype(np.uint8)  # pale skin
    skin = np.ones((64, 64), dtype=np.float32)
    skin[24:40, 24:40] = 0.0
    out = transfer_colour(donor, target_image, skin, skin, face_size=64)
    iris = to_lab(out)[24:40, 24:40]
    assert np.abs(iris[..., 1:]).max() < 3.0  # still grey: neither blue nor green


def test_a_dark_eyed_face_gets_dark_eyes_not_grey_or_green_ones():
    # The colour transfer squeezed the donor's contrast to her skin and lifted it to her lightness: her new irises
    # came out 39 LAB L units darker than her skin against her own 61, and green. Measured on the result as on
    # her photo: the darkest 40% of the eyes' pixels against the eye band's skin.
    image, faces, result, reports = replaced("mpl_grace_hopper.jpg")
    assert reports[faces[0].number].mode == "replace"
    predictor = cached_models().replace.get().predictor
    darkness = []
    for photo in (image, result):
        prepared = prepare_face(photo, faces[0], predictor)
        shape = prepared.crop.shape[:2]
        eyes = replace_mode.eyes_mask(shape, prepared.points, prepared.size_px)
        skin = eye_band(shape, prepared.points) * (1 - feature_mask(shape, prepared.points, grow_px=0.03 * prepared.size_px))
        darkness.append(iris_colour(to_lab(prepared.crop), eyes, skin))
    (_, own, own_chroma), (_, new, new_chroma) = darkness
    assert new >= 0.85 * own, f"her irises are {own:.0f} darker than her skin, the new ones {new:.0f}"
    assert np.hypot(*(new_chroma - own_chroma)) < 6.0, f"iris colour {own_chroma.round(1)} became {new_chroma.round(1)}"
