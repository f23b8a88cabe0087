//! Integration tests.

/// Real FUSE mounts of temporary registries, through the built `artfs` binary.
mod mount;
