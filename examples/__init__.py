"""Bring-your-own-RNN examples: real implementations written from their equations (README.md)."""
