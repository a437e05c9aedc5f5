//! Table and JSON rendering shared by all commands.
