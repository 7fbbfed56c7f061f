"""Models: the encoders of every channel (image-text CLIP/SigLIP, dense text, sparse BM25, the
creative fingerprint), their ONNX export and int8 check, model downloads, random test models."""
