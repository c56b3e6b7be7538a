"""har-edge export: Keras run -> TFLite variants behind an accuracy-parity gate -> bundle.

Needs TensorFlow (the train environment); the bundle it writes is read by `har_runtime.bundle`
on devices without TensorFlow.
"""
