"""Conformance suite: judges the PBX simulator against Asterisk's own contract.

`python -m callstream_pbx_sim.conformance --api-docs DIR [--base-url URL]` drives every call-center flow with
a plain ARI client, validates every event and every REST response against Asterisk's api-docs (read at run
time from DIR) and every flow's event order against NOTES.md §b, and ends with one line:
`CONFORMANCE events=<n> types=<k> responses=<m> violations=<v>`.
"""

from .runner import Result, run_conformance

__all__ = ["Result", "run_conformance"]
