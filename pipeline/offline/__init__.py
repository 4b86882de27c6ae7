"""Offline tools, run from the command line and never by a worker.

Donor generation with StyleGAN2 and its direction fitting (`generated`), unmask
mode's training (`training`) with its data (`dataset`, `synthesis`: faces with
synthetic masks) and its measures (`metrics`). `python -m pipeline pool build
--count`, `unmask train` and `unmask eval` import them when they run.
"""
