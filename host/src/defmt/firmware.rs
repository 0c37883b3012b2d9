//! One registered firmware: the defmt table and statement locations read from its ELF, and
//! the build id the device announces for it.

use defmt_decoder::{Locations, Table};
use object::Object;

/// Why an ELF cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    /// The bytes are not an ELF file.
    #[error("not an ELF file: {0}")]
    NotElf(String),
    /// The ELF has no `.defmt` section: the firmware does not log with defmt.
    #[error("the ELF has no defmt table (no .defmt section)")]
    NoDefmtTable,
    /// The `.defmt` section did not read as a table (another defmt major version, say).
    #[error("the ELF's defmt table does not read: {0}")]
    BadTable(String),
    /// No build id was given and the ELF has no GNU build-id note to take it from.
    #[error("the ELF has no GNU build-id note; link with --build-id or pass --build-id ID")]
    NoBuildId,
    /// A build id that is empty or longer than a Hello can carry.
    #[error("build id must be 1 to {max} bytes", max = MAX_BUILD_ID)]
    BadBuildId,
}

/// Longest build id: the core's limit on the Hello's identity strings.
pub const MAX_BUILD_ID: usize = sentelite_core::session::MAX_ID_LEN;

/// A firmware's defmt table, ready to decode its frames. Built once per registration; the
/// ELF itself is not kept in memory.
pub struct Firmware {
    build_id: String,
    table: Table,
    locations: Locations,
    elf_bytes: usize,
}

impl std::fmt::Debug for Firmware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Firmware")
            .field("build_id", &self.build_id)
            .field("formats", &self.formats())
            .finish()
    }
}

impl Firmware {
    /// Reads `elf`: its defmt table, the locations of its log statements (empty when the
    /// ELF has no debug info), and its build id — `build_id` when given, else the GNU
    /// build-id note as lowercase hex.
    pub fn parse(elf: &[u8], build_id: Option<&str>) -> Result<Self, ElfError> {
        let file = object::File::parse(elf).map_err(|e| ElfError::NotElf(e.to_string()))?;
        if file.format() != object::BinaryFormat::Elf {
            return Err(ElfError::NotElf(format!("{:?} object", file.format())));
        }
        let build_id = match build_id {
            Some(id) => id.to_owned(),
            None => gnu_build_id(&file).ok_or(ElfError::NoBuildId)?,
        };
        if build_id.is_empty() || build_id.len() > MAX_BUILD_ID {
            return Err(ElfError::BadBuildId);
        }
        let table = Table::parse(elf)
            .map_err(|e| ElfError::BadTable(format!("{e:#}")))?
            .ok_or(ElfError::NoDefmtTable)?;
        // Locations need DWARF; without it records still decode, only without file and line.
        let locations = table.get_locations(elf).unwrap_or_default();
        Ok(Self {
            build_id,
            table,
            locations,
            elf_bytes: elf.len(),
        })
    }

    /// The build id the device announces in its Hello.
    pub fn build_id(&self) -> &str {
        &self.build_id
    }

    /// Log statements in the table.
    pub fn formats(&self) -> usize {
        self.table.indices().count()
    }

    /// Size of the ELF it was read from.
    pub fn elf_bytes(&self) -> usize {
        self.elf_bytes
    }

    pub(crate) fn table(&self) -> &Table {
        &self.table
    }

    pub(crate) fn locations(&self) -> &Locations {
        &self.locations
    }
}

/// The GNU build-id note (`NT_GNU_BUILD_ID`) as lowercase hex, if the ELF has one.
fn gnu_build_id(file: &object::File<'_>) -> Option<String> {
    file.build_id().ok().flatten().map(hex::encode)
}
