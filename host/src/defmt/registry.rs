//! The registered ELFs: one file per build id in the data dir, read back at startup, and a
//! map from build id to its decoded table; plus what happened to the frames of each build
//! id, so frames stored undecoded are counted, never silent.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::batch::{Outcome, Undecoded, rewrite};
use super::firmware::{ElfError, Firmware};

/// Folder of the data dir that holds the registered ELFs, named by their build id in hex.
pub const ELF_DIR: &str = "defmt-elf";

/// Why a registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The ELF was refused.
    #[error(transparent)]
    Elf(#[from] ElfError),
    /// It could not be kept on disk.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// A registered ELF, as `GET /api/elf` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ElfInfo {
    /// The build id devices announce.
    pub build_id: String,
    /// Log statements in its defmt table.
    pub formats: usize,
    /// Size of the ELF.
    pub bytes: usize,
}

/// What became of the defmt frames of one announced build id (`""` for clients that
/// announced none) since the server started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct FrameCounters {
    /// The build id.
    pub build_id: String,
    /// Frames decoded into records.
    pub decoded: u64,
    /// Frames stored undecoded: no ELF registered for the build id.
    pub unmatched: u64,
    /// Frames stored undecoded: they did not decode with the registered ELF.
    pub errors: u64,
}

/// The ELF registry and decoder. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DefmtService {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    firmware: Mutex<HashMap<String, Arc<Firmware>>>,
    counters: Mutex<BTreeMap<String, FrameCounters>>,
}

impl DefmtService {
    /// Opens the registry in `data_dir` and reads every ELF registered before. An ELF that
    /// no longer reads is logged and left out, not fatal.
    pub fn open(data_dir: &Path) -> Result<Self, RegistryError> {
        let dir = data_dir.join(ELF_DIR);
        std::fs::create_dir_all(&dir).map_err(|source| RegistryError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut firmware = HashMap::new();
        let entries = std::fs::read_dir(&dir).map_err(|source| RegistryError::Io {
            path: dir.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(build_id) = build_id_of_file(&path) else {
                continue;
            };
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|elf| Firmware::parse(&elf, Some(&build_id)).map_err(|e| e.to_string()))
            {
                Ok(read) => {
                    firmware.insert(build_id, Arc::new(read));
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "registered ELF left out");
                }
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                dir,
                firmware: Mutex::new(firmware),
                counters: Mutex::new(BTreeMap::new()),
            }),
        })
    }

    /// Registers `elf` under `build_id`, or under its GNU build-id note when `None`, and
    /// keeps a copy on disk; an ELF registered before under the same id is replaced.
    /// Blocking (reads the ELF's debug info): call from `spawn_blocking` in async code.
    pub fn add(&self, elf: &[u8], build_id: Option<&str>) -> Result<ElfInfo, RegistryError> {
        let firmware = Firmware::parse(elf, build_id)?;
        let path = self.path_of(firmware.build_id());
        let partial = path.with_extension("partial");
        std::fs::write(&partial, elf)
            .and_then(|()| std::fs::rename(&partial, &path))
            .map_err(|source| RegistryError::Io {
                path: path.clone(),
                source,
            })?;
        let info = info_of(&firmware);
        tracing::info!(build_id = %info.build_id, formats = info.formats, "ELF registered");
        crate::registry::lock(&self.inner.firmware)
            .insert(info.build_id.clone(), Arc::new(firmware));
        Ok(info)
    }

    /// Forgets the ELF of `build_id`; `false` when none was registered.
    pub fn remove(&self, build_id: &str) -> Result<bool, RegistryError> {
        let known = crate::registry::lock(&self.inner.firmware)
            .remove(build_id)
            .is_some();
        let path = self.path_of(build_id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(known),
            Err(source) => Err(RegistryError::Io { path, source }),
        }
    }

    /// The registered ELFs, by build id.
    pub fn list(&self) -> Vec<ElfInfo> {
        let mut list: Vec<ElfInfo> = crate::registry::lock(&self.inner.firmware)
            .values()
            .map(|f| info_of(f))
            .collect();
        list.sort_by(|a, b| a.build_id.cmp(&b.build_id));
        list
    }

    /// The frame counters, by build id.
    pub fn counters(&self) -> Vec<FrameCounters> {
        crate::registry::lock(&self.inner.counters)
            .values()
            .cloned()
            .collect()
    }

    /// The firmware registered for `build_id`.
    pub fn firmware(&self, build_id: &str) -> Option<Arc<Firmware>> {
        crate::registry::lock(&self.inner.firmware)
            .get(build_id)
            .cloned()
    }

    /// A checked `telemetry/log-batch` payload from a client that announced `build_id`,
    /// with its defmt records decoded (see [`rewrite`]); `None` when it holds none, so it is
    /// stored as it came. Undecoded frames are counted, and the first of each build id and
    /// reason logged.
    pub fn decode(
        &self,
        client_id: &str,
        build_id: Option<&str>,
        payload: &[u8],
    ) -> Option<Vec<u8>> {
        let firmware = build_id.and_then(|id| self.firmware(id));
        let missing = match (build_id, &firmware) {
            (_, Some(_)) => None,
            (None, None) => Some(Undecoded::NoBuildId),
            (Some(id), None) => Some(Undecoded::NoElf(id.to_owned())),
        };
        let source = match (&firmware, &missing) {
            (Some(firmware), _) => Ok(firmware.as_ref()),
            (None, Some(why)) => Err(why),
            (None, None) => return None,
        };
        let (rewritten, outcome) = rewrite(payload, source)?;
        self.count(client_id, build_id.unwrap_or(""), outcome, missing.as_ref());
        Some(rewritten)
    }

    fn count(
        &self,
        client_id: &str,
        build_id: &str,
        outcome: Outcome,
        missing: Option<&Undecoded>,
    ) {
        let mut counters = crate::registry::lock(&self.inner.counters);
        let entry = counters
            .entry(build_id.to_owned())
            .or_insert_with(|| FrameCounters {
                build_id: build_id.to_owned(),
                ..FrameCounters::default()
            });
        if outcome.unmatched > 0 && entry.unmatched == 0 {
            let why = missing.map(ToString::to_string).unwrap_or_default();
            tracing::warn!(client = %client_id, build_id, "defmt frames stored undecoded: {why}; register the firmware with `sentelite elf add FILE`");
        }
        if outcome.errors > 0 && entry.errors == 0 {
            tracing::warn!(client = %client_id, build_id, "defmt frames that do not decode with the registered ELF stored undecoded (is it the build the device runs?)");
        }
        entry.decoded += outcome.decoded;
        entry.unmatched += outcome.unmatched;
        entry.errors += outcome.errors;
    }

    fn path_of(&self, build_id: &str) -> PathBuf {
        self.inner
            .dir
            .join(format!("{}.elf", hex::encode(build_id)))
    }
}

fn info_of(firmware: &Firmware) -> ElfInfo {
    ElfInfo {
        build_id: firmware.build_id().to_owned(),
        formats: firmware.formats(),
        bytes: firmware.elf_bytes(),
    }
}

/// The build id a registry file stands for: its name is the id in hex, then `.elf`.
fn build_id_of_file(path: &Path) -> Option<String> {
    if path.extension()? != "elf" {
        return None;
    }
    let bytes = hex::decode(path.file_stem()?.to_str()?).ok()?;
    String::from_utf8(bytes).ok()
}
