//! Reads of one file's bytes by their offset in the file, for streaming readers
//! (the `streaming` module's): through the same cache of open files, opened beneath the base
//! directory, as the piece reads and writes.

use bt_proto::storage::{StorageError, StorageOp};
use bytes::Bytes;

use super::{Storage, read_append_at};

impl Storage {
    /// Reads `len` bytes at `offset` of file `index` (a padding file's bytes are zeros; it is
    /// never on disk). The caller reads only verified bytes, which are on disk, so the end
    /// of the file before `len` bytes is an error.
    pub(crate) fn read_file(
        &self,
        index: usize,
        offset: u64,
        len: usize,
    ) -> Result<Bytes, StorageError> {
        let spec = self
            .spec(index)
            .map_err(|e| self.failed(StorageOp::Read, index, e))?;
        if spec.is_padding() {
            return Ok(Bytes::from(vec![0; len]));
        }
        let file = self
            .open(index, false)
            .map_err(|e| self.failed(StorageOp::Open, index, e))?;
        let mut out = Vec::with_capacity(len);
        read_append_at(&file, &mut out, len, offset)
            .map_err(|e| self.failed(StorageOp::Read, index, e))?;
        Ok(Bytes::from(out))
    }
}
