"""Weights files shipped with the zoo; presets.json lists them (see zoo.weights)."""
