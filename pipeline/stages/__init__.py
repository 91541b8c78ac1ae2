"""Workflow stages built on the physics layers: emulator training and validation, sampling
and the emulator-bias study.  (The simulate stage is cosmopipe.pipeline.simulate.)"""
