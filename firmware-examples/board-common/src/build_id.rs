//! The firmware's own build id: the GNU build-id note the linker wrote (`--build-id=sha1`,
//! a SHA-1 over the image), kept in flash by `ld/sentelite-build-id-*.x` between
//! `__sentelite_build_id_start` and `__sentelite_build_id_end`. Announced in the Hello as 40
//! lowercase hex digits, it is exactly the key `sentelite elf add FILE` registers the ELF
//! under (PROTOCOL.md 13.3), so the host finds the right ELF for a device's defmt frames
//! without being told a name, and two builds never share one.

/// Bytes of the SHA-1 build id.
pub const BUILD_ID_BYTES: usize = 20;
/// Hex digits of the announced build id.
pub const BUILD_ID_HEX: usize = 2 * BUILD_ID_BYTES;

/// `NT_GNU_BUILD_ID`.
const NT_GNU_BUILD_ID: u32 = 3;
/// Note header: name size, descriptor size, type (little-endian `u32`s), then the name
/// `"GNU\0"`, padded to 4 bytes.
const HEADER: usize = 16;

/// The SHA-1 build id from an ELF note (`header + 20 bytes`), or `None` when `note` is not a
/// GNU build-id note of that length.
pub fn from_note(note: &[u8]) -> Option<&[u8; BUILD_ID_BYTES]> {
    let word = |at: usize| {
        note.get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let (name_len, desc_len, kind) = (word(0)?, word(4)?, word(8)?);
    let sha1 = name_len == 4
        && desc_len as usize == BUILD_ID_BYTES
        && kind == NT_GNU_BUILD_ID
        && note.get(12..HEADER)? == b"GNU\0";
    if !sha1 {
        return None;
    }
    note.get(HEADER..HEADER + BUILD_ID_BYTES)?.try_into().ok()
}

/// Writes `id` as lowercase hex into `out` and returns it as text.
pub fn hex<'a>(id: &[u8; BUILD_ID_BYTES], out: &'a mut [u8; BUILD_ID_HEX]) -> &'a str {
    crate::hex::prefixed("", id, out)
}

/// This image's build id as 40 hex digits in `out`, or `None` when it was linked without the
/// note (no `--build-id=sha1`, or a linker script that drops it).
pub fn own(out: &mut [u8; BUILD_ID_HEX]) -> Option<&str> {
    Some(hex(from_note(own_note())?, out))
}

/// The bytes between the two symbols the linker script defines around the note.
#[allow(unsafe_code)]
fn own_note() -> &'static [u8] {
    unsafe extern "C" {
        static __sentelite_build_id_start: u8;
        static __sentelite_build_id_end: u8;
    }
    let start = &raw const __sentelite_build_id_start;
    let end = &raw const __sentelite_build_id_end;
    let len = (end as usize).saturating_sub(start as usize);
    // SAFETY: the linker script places both symbols around the kept note in flash, which is
    // mapped and never written while the image runs; `len` is the distance between them.
    unsafe { core::slice::from_raw_parts(start, len) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(kind: u32, desc: &[u8]) -> [u8; 36] {
        let mut note = [0u8; 36];
        note[0..4].copy_from_slice(&4u32.to_le_bytes());
        note[4..8].copy_from_slice(&(desc.len() as u32).to_le_bytes());
        note[8..12].copy_from_slice(&kind.to_le_bytes());
        note[12..16].copy_from_slice(b"GNU\0");
        note[16..16 + desc.len().min(20)].copy_from_slice(&desc[..desc.len().min(20)]);
        note
    }

    #[test]
    fn a_sha1_build_id_note_reads_as_forty_hex_digits() {
        let id: [u8; 20] = core::array::from_fn(|i| (i as u8).wrapping_mul(13).wrapping_add(0x0a));
        let mut out = [0u8; BUILD_ID_HEX];
        let text = hex(from_note(&note(NT_GNU_BUILD_ID, &id)).unwrap(), &mut out);
        assert_eq!(text, "0a1724313e4b5865727f8c99a6b3c0cddae7f401");
    }

    #[test]
    fn other_notes_and_short_input_are_not_a_build_id() {
        let id = [7u8; 20];
        assert!(from_note(&note(1, &id)).is_none(), "another note type");
        assert!(
            from_note(&note(NT_GNU_BUILD_ID, &id[..16])).is_none(),
            "md5/uuid length"
        );
        assert!(
            from_note(&note(NT_GNU_BUILD_ID, &id)[..30]).is_none(),
            "cut short"
        );
        assert!(from_note(&[]).is_none(), "no note linked");
        let mut wrong_name = note(NT_GNU_BUILD_ID, &id);
        wrong_name[12] = b'X';
        assert!(from_note(&wrong_name).is_none(), "not the GNU namespace");
    }
}
