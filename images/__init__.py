"""OCI images built on this machine (buildah + mmdebstrap, no registry, no Docker): see images/README.md."""
