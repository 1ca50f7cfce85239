"""OPI: ANN-to-SNN conversion with optimal initial membrane potential (Bu et al., AAAI 2022)."""
