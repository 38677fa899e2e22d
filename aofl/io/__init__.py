"""File primitives: atomic writes, file checks, one sha256, the safe pickle loader; and a child
process's environment (`child_env`).

Nothing here imports anything of aofl but `aofl.errors` (tests/test_layout.py): every other layer may
use these. What is stored (checkpoints, the registry, caches) lives in `aofl.store`, above the model.
"""
