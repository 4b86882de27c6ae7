"""The face toolkit the modes share: what a mode needs to know about and do to one face.

68-point landmarks (`landmarks`), colour and grain transfer (`colour`), the donor
pool and the choice of a donor (`donors`, `pool`), the working crop and the unmask
networks' aligned frame (`crop`), the face-mask finder with its probability
(`covering`; the threshold is `types.MASKED_THRESHOLD`) and the blur every mode
falls back to (`blur`). Modes import this package, never each other.
"""
