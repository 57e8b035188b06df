"""The torch networks genomes build (``Genome.build`` imports them when called).

Kept apart from ``spaces``, whose modules describe, sample and mutate genomes without
torch: the registries import every module of ``spaces`` to find the families, and the CLI
must start without loading torch.
"""
