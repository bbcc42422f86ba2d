"""imagehop: a multi-region image cloud speaking the OpenStack APIs, and a transfer engine."""

__version__ = "0.1.0"
