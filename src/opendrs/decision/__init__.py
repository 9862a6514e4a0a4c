"""The decision engine: filters and weighers choose destinations on a virtual view
of the cluster, strategies turn a goal into a solution, audits run them."""
