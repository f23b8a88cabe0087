//! The mounted filesystem: artifact versions as read-only directory trees.

pub mod tree;
