"""scicli: reconstruct video from snapshot compressive imaging (CACTI) measurements.

Forward model: ``y = sum_t M_t * x_t + n`` with B coded frames ``x_t`` and masks ``M_t``.
"""

__version__ = "0.1.0"
