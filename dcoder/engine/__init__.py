"""The engine: a loaded model (tokenizer, special tokens, a backend: onnxruntime or PyTorch), the
denoising sampler, spans of masks in a document, checkpoints, export and the hub."""
