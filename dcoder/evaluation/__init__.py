"""Measuring: benchmark tasks and their sandboxed tests (dcoder eval), speed and memory (dcoder bench)."""
