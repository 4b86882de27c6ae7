"""The job queue between the chat adapters and the GPU/CPU workers.

`workers.client.PhotoJobs` is what the bot calls; `python -m workers` runs one
worker; `python -m service` (service.py, above `bot` and `workers`) runs the
whole service in one command.
"""
