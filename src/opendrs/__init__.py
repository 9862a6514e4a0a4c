"""opendrs: an open dynamic resource scheduler for KVM and OpenStack-style clouds."""

__version__ = "0.1.0"
