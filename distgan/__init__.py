"""distgan: GAN training on one CPU, one GPU, many GPUs or many SLURM nodes with the same results."""

__version__ = "0.1.0"
