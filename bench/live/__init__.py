"""Live captions at call-center load, measured from outside: K concurrent real-time streams
over both live protocols against a real `callscribe serve`, latency from the audio's own
speech onset and offset, streamed finals scored against the offline path in the same run.

    python -m bench.live --help
"""
