"""nib model pipeline."""
import os

# ONNX Runtime records usage telemetry (a device id, events under
# ~/.cache/Microsoft) unless this is set before its environment starts; the
# pipeline's tools import onnxruntime only after this package.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
