"""har-edge runtime: numpy-only preprocessing shared with training, and the on-device classifier.

This package must never import TensorFlow or Keras: it runs on a Raspberry Pi with only numpy and
tflite-runtime (or ai-edge-litert).
"""
__version__ = "0.2.0"
