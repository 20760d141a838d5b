"""Serving Toto over the Open Inference Protocol v2: the model side of remote inference.

engine.py (the in-process engine code behind OIP), oip.py (servicer + plain grpcio server),
ray_app.py (the Ray Serve deployment; needs the `serving` extra), cli.py (`serve-model`).
"""
