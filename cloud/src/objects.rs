//! Object storage for segment and picture bytes, behind the `object_store`
//! crate so that S3-compatible storage can replace the local filesystem
//! without touching handlers. This module owns the key layout and the
//! streaming write with digest, size cap and disk-full handling.

use crate::error::{Error, ErrorKind, Result};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Multipart chunk: bounds memory per upload while keeping writes large.
const CHUNK: usize = 1 << 20;

/// Body frames are gathered up to this size before they go to the store.
/// Under load, hyper hands an HTTP/1 body over in frames of ~10 KB (its
/// adaptive read buffer stays small), and the local store writes every
/// frame with a syscall of its own: ~100,000 writes per GB. One copy into
/// a 256 KiB buffer costs less than that (docs/design/cloud-bench.md).
const GATHER: usize = 256 << 10;

/// What a streaming write stored.
#[derive(Debug)]
pub struct Stored {
    /// Bytes stored.
    pub bytes: u64,
    /// SHA-256 of those bytes, hex.
    pub sha256: String,
    /// Whether the body ended early (the client went away or sent a broken
    /// chunk): what arrived is stored, and the caller records it as partial.
    pub truncated: bool,
}

/// The object store of one service instance.
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    /// Local root, for free-space checks and the staging-file sweep.
    root: Option<PathBuf>,
    min_free_bytes: u64,
}

/// Key of the bytes of one upload of a segment. Every upload gets a key of
/// its own (`{id}.{16 random hex digits}`): a re-upload of an id whose old
/// object is still queued for deletion must not share its key, or the
/// reaper would delete the new bytes under a live row.
pub fn segment_key(device: &str, segment: &str) -> String {
    format!("devices/{device}/segments/{segment}.{}", generation())
}

/// Key of the bytes of one upload of a picture (fresh per upload, as
/// [`segment_key`]).
pub fn picture_key(device: &str, picture: &str) -> String {
    format!("devices/{device}/pictures/{picture}.{}", generation())
}

fn generation() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Hands `data` to a multipart upload, waiting while two of its chunks are
/// being written (back-pressure bounds memory per upload).
async fn write_part(w: &mut WriteMultipart, data: Bytes) -> Result<()> {
    w.wait_for_capacity(2).await.map_err(map_err)?;
    w.put(data);
    Ok(())
}

fn map_err(e: object_store::Error) -> Error {
    if let object_store::Error::NotFound { .. } = e {
        return Error::not_found("no such object");
    }
    // Disk full surfaces as an io::Error somewhere in the source chain.
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && (io.kind() == std::io::ErrorKind::StorageFull
                || io.raw_os_error() == Some(nix::libc::ENOSPC))
        {
            return Error::new(ErrorKind::InsufficientStorage, "the disk is full");
        }
        src = s.source();
    }
    Error::internal(format!("object store: {e}"))
}

impl Objects {
    /// Objects as files under `root` (created if missing).
    pub fn local(root: &Path, fsync: bool, min_free_bytes: u64) -> Result<Objects> {
        std::fs::create_dir_all(root)?;
        let fs = LocalFileSystem::new_with_prefix(root)
            .map_err(map_err)?
            .with_fsync(fsync);
        Ok(Objects {
            store: Arc::new(fs),
            root: Some(root.to_path_buf()),
            min_free_bytes,
        })
    }

    /// Refuses with 507 when the disk has less than the reserve plus
    /// `incoming` bytes free, so the disk never fills mid-write in the
    /// common case (ENOSPC during a write is still mapped to 507).
    pub fn check_space(&self, incoming: u64) -> Result<()> {
        let Some(root) = &self.root else {
            return Ok(());
        };
        let st = nix::sys::statvfs::statvfs(root)
            .map_err(|e| Error::internal(format!("statvfs: {e}")))?;
        // The statvfs field types differ by target (u32 on some 32-bit ones).
        #[allow(clippy::useless_conversion)]
        let free = u64::from(st.blocks_available()).saturating_mul(u64::from(st.fragment_size()));
        if free < self.min_free_bytes.saturating_add(incoming) {
            return Err(Error::new(
                ErrorKind::InsufficientStorage,
                "the disk is full",
            ));
        }
        Ok(())
    }

    /// Streams `body` into `key`, hashing as it goes. More than `max_bytes`
    /// is refused (413) and nothing is stored. A body that breaks off keeps
    /// what arrived (`truncated`). A failed write stores nothing.
    pub async fn put_stream<S, E>(&self, key: &str, mut body: S, max_bytes: u64) -> Result<Stored>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let path = ObjPath::from(key);
        let upload = self.store.put_multipart(&path).await.map_err(map_err)?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, CHUNK);
        let mut hash = Sha256::new();
        let mut bytes = 0u64;
        let mut truncated = false;
        let mut gathered = BytesMut::new();
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    tracing::info!(key, error = %e, bytes, "upload body broke off");
                    truncated = true;
                    break;
                }
            };
            bytes += chunk.len() as u64;
            if bytes > max_bytes {
                w.abort().await.map_err(map_err)?;
                return Err(Error::new(
                    ErrorKind::TooLarge,
                    format!("the body exceeds {max_bytes} bytes"),
                ));
            }
            hash.update(&chunk);
            if gathered.is_empty() && chunk.len() >= GATHER {
                write_part(&mut w, chunk).await?;
                continue;
            }
            gathered.extend_from_slice(&chunk);
            if gathered.len() >= GATHER {
                write_part(&mut w, gathered.split().freeze()).await?;
            }
        }
        if !gathered.is_empty() {
            write_part(&mut w, gathered.freeze()).await?;
        }
        w.finish().await.map_err(map_err)?;
        Ok(Stored {
            bytes,
            sha256: hex::encode(hash.finalize()),
            truncated,
        })
    }

    /// Stores a whole small body (pictures).
    pub async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        self.store
            .put(&ObjPath::from(key), data.into())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    /// A byte range of an object, as a stream.
    pub async fn get_range(
        &self,
        key: &str,
        range: Range<u64>,
    ) -> Result<impl Stream<Item = std::result::Result<Bytes, Error>> + Send + 'static> {
        let opts = object_store::GetOptions {
            range: Some(object_store::GetRange::Bounded(range)),
            ..Default::default()
        };
        let r = self
            .store
            .get_opts(&ObjPath::from(key), opts)
            .await
            .map_err(map_err)?;
        Ok(r.into_stream().map(|c| c.map_err(map_err)))
    }

    /// A whole object in memory (for small objects and parsing).
    pub async fn get_bytes(&self, key: &str) -> Result<Bytes> {
        let r = self.store.get(&ObjPath::from(key)).await.map_err(map_err)?;
        r.bytes().await.map_err(map_err)
    }

    /// Deletes an object; a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self.store.delete(&ObjPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }

    /// Every object key under `prefix` (tests and `device remove` checks).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let p = ObjPath::from(prefix);
        let mut out = Vec::new();
        let mut s = self.store.list(Some(&p));
        while let Some(m) = s.next().await {
            out.push(m.map_err(map_err)?.location.to_string());
        }
        Ok(out)
    }

    /// The names under `prefix` one level down (`devices/` gives device ids).
    pub async fn children(&self, prefix: &str) -> Result<Vec<String>> {
        let r = self
            .store
            .list_with_delimiter(Some(&ObjPath::from(prefix)))
            .await
            .map_err(map_err)?;
        Ok(r.common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
    }

    /// Removes `name#suffix` staging files of multipart uploads that a
    /// crash (kill -9, power loss) interrupted. Only the service calls it,
    /// at startup while holding the data directory's lock: an admin command
    /// running next to a live service must not remove its uploads' files.
    pub fn sweep_staging(&self) -> Result<()> {
        match &self.root {
            Some(root) => sweep_staging(root),
            None => Ok(()),
        }
    }
}

fn sweep_staging(root: &Path) -> Result<()> {
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let ft = e.file_type()?;
            if ft.is_dir() {
                dirs.push(e.path());
            } else if e.file_name().to_string_lossy().contains('#') {
                tracing::info!(path = %e.path().display(), "removing interrupted upload");
                std::fs::remove_file(e.path())?;
            }
        }
    }
    Ok(())
}
