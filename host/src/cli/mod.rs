//! Subcommands of the `sentelite` binary that have grown past a few lines; each file is one
//! command group, a thin user of the library.

pub(crate) mod blob;
pub(crate) mod elf;
pub(crate) mod logs;
