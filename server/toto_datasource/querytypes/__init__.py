"""Query types: each turns (query, history, plan) into model jobs, then the answers into frames.

Two phases (`submit`, then `PendingFrames.frames`) so every query of a request is queued before
any is awaited: the engine can then batch a whole dashboard refresh into few model calls.
"""
