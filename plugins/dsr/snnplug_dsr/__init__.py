"""DSR: Differentiation on Spike Representation (Meng et al., CVPR 2022)."""
