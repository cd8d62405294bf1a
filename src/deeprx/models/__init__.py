"""DeepRx networks and their preset registry; importing the package registers every preset."""

from deeprx.models import deeprx as deeprx
