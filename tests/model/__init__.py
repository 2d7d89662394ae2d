"""The Promela model of issue 14's lease protocol (model/leases.pml), checked with spin."""
