"""The model: networks with their config, diffusion (schedule, DDIM sampling and inversion), preprocessing of
model inputs, the linear probe and calibration (no fitting), out-of-distribution statistics and the device choice.
Imports ``io`` at most.
"""
