"""BNTT: Batch Normalization Through Time (Kim & Panda, Front. Neurosci. 2021)."""
