//! The driver components, built for wasm32-wasip2 by this crate's build script.
//! `POSIX` is the path of a `.wasm` file; `POSIX_BYTES` its contents.

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));

#[cfg(test)]
mod tests {
    #[test]
    fn components_are_built() {
        // A component (not a core module): magic, then layer 1 / version 0x0d.
        for bytes in [
            super::POSIX_BYTES,
            super::TEMPLATE_BYTES,
            super::HOSTILE_TRAP_MID_BACKUP_BYTES,
            super::HOSTILE_ESCAPE_FS_BYTES,
            super::HOSTILE_WRONG_WORLD_BYTES,
            super::HOSTILE_FUTURE_WIT_BYTES,
        ] {
            assert_eq!(&bytes[..4], b"\0asm");
            assert_eq!(&bytes[4..8], &[0x0d, 0x00, 0x01, 0x00]);
        }
    }
}
