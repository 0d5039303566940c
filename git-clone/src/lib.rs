//! `cicd-git-clone`: the tool behind the `git-clone` catalog task. It clones
//! with libgit2 (the git2 crate, vendored with OpenSSL and libssh2) so its
//! image needs no git installation and can be FROM scratch.

pub mod args;
pub mod clone;
pub mod credential_store;
pub mod revision;
pub mod ssh;
