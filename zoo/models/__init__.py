"""The model families of the zoo, one file each. Importing a family registers its models."""

from zoo.models.alexnet import alexnet
from zoo.models.lenet import lenet

__all__ = ["alexnet", "lenet"]
