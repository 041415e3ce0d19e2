#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nerloop.settings")
    # torch's C++ warnings (prim::PackPadded shape inference on every ONNX export of the packed
    # LSTM, which exports fine: docs/engine.md) would bury train's output; torch reads this once.
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
