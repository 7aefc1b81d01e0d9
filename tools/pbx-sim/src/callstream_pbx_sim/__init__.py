"""callstream-pbx-sim: an ARI-compatible PBX simulator standing in for Asterisk 22 LTS / 23."""
