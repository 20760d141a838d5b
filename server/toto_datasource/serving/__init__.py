"""Serving Toto over the Open Inference Protocol v2: the model side of remote inference.

engine.py (`ServingEngine`: the in-process Toto runner behind OIP, and `run_merged`), merging.py
(requests that queue behind a model call share the next one), oip.py (servicer + plain grpcio
server), cli.py (`serve-model`), ray_app.py and ray_tuning.py (the Ray Serve deployment; needs the
`serving` extra), kserve_model.py (a KServe model) and triton_model.py (a Triton model through
PyTriton), each run in an environment of its own.
"""
