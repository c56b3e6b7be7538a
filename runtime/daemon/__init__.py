"""The `har-runtime serve` daemon: Source -> Engine (one StreamClassifier per device) -> Sink.

`sources` (stdin, file, TCP, UDP, serial, memory) yield bounded lines, `lines` parses them,
`checks` holds the plausibility bounds, timestamp units and the wrong-unit hint, `engine`
routes samples to per-device streams and counts everything, `sinks` write events, `server`
runs the single-threaded loop with signals and counter logs, `model` loads bundles.
Phones and fleets: `http_source` (HTTP push), `mqtt_source` and `mqtt_sink` (over `mqtt`'s
connection), both decoding JSON bodies (Sensor Logger, plain) with `sensor_logger`.
"""
