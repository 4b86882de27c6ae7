"""The modes' names, the one list the bot, the workers and `analysis.MODES` agree on.

A mode (`blur`, `replace/`, `unmask/`) is a module with `start(image, faces, keep,
models) -> FaceChanger` and `unavailable_reason(models) -> str | None`; the changer's
`apply(face) -> ModeOutput` returns the new pixels for one face as a crop, a soft mask
saying where to use them, and the matrix from photo pixels to crop pixels
(`pipeline.types`). `paste.paste_back` puts every crop back in one place. Per-photo
state (replace mode's donors already used, the kept faces' identities) lives in the
changer; what happened to each face is in its `reports`. Modes share code through
the face toolkit (`pipeline.face`), never by importing each other. This module
stays light (no cv2, no torch): the bot reads it.
"""

MODE_NAMES = ("replace", "unmask", "blur")
