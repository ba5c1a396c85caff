"""Helpers the tests and the benchmarks share: a loopback server for the real
app, the Docker image's command run without Docker, a headless browser,
drawings, and the bad-input battery.

Neither tests/ nor benchmarks/ imports the other; both import this package.
It is never shipped (.dockerignore leaves it out of the image).
"""
