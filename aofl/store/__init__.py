"""What the project stores and reads back: checkpoints (safetensors + JSON metadata), training resume
state, the checkpoint registry and MANIFEST.json, pinned downloads, the inference-result disk cache, and
`inspect` (what any checkpoint or data file is).

A layer above the model, inference and data (it reads and writes their values) and below training,
evaluation, the CLI and the app; file plumbing comes from `aofl.io`. Import the modules themselves
(`from aofl.store.checkpoint import load_checkpoint`): this package imports nothing on its own.
"""
