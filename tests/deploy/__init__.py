"""Offline checks of the deployment files: compose, the Dockerfile, the Kubernetes manifests."""
