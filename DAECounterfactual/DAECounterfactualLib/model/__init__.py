"""The model: networks with their config, diffusion (schedule, DDIM sampling and inversion), preprocessing of
model inputs, the linear probe and calibration (no fitting). Imports ``io`` at most.
"""
