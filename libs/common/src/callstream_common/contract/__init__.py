"""The published contract of every topic, generated into schemas/ from the message models and the catalogue.

Run `python -m callstream_common.contract.generate --out schemas` (`make schemas`) after changing a model or
the catalogue, and `--check` in CI. The generator lives in `generate.py`; this package imports nothing at
import time, so that `python -m` runs that module without importing it twice.
"""
