//! `artfs._native`, the extension module of the Python package (feature `python`, built into the
//! wheel by maturin): a [`VersionReader`] per version, so that the fsspec filesystem reads
//! through the mount's own logic, verified and from the shared cache, in-process. Every blocking
//! call lets go of the GIL. Errors become the package's own exceptions (`artfs.errors.error`),
//! chosen by [`ErrorKind`], with the CLI's message.

// pyo3's macros expand to the FFI glue, which is `unsafe` by nature; none is written here.
#![allow(unsafe_code)]

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::cmd::reader::{ReaderSettings, Stat, VersionReader};
use crate::fs::{FsError, HandleNo};
use crate::kind::ErrorKind;

/// The package's exception for `e`: `artfs.errors.error(kind, message)`.
fn to_py(py: Python<'_>, e: &(dyn std::error::Error + 'static)) -> PyErr {
    let kind = ErrorKind::of(e).name();
    let message = crate::report::error_line(e);
    let made = py
        .import("artfs.errors")
        .and_then(|m| m.getattr("error"))
        .and_then(|make| make.call1((kind, message)));
    match made {
        Ok(exception) => PyErr::from_value(exception),
        Err(e) => e,
    }
}

/// The package's exception for `e`, met at `path` of the version: the errors that say nothing of
/// where they happened (no such file, not a directory) are prefixed with it.
fn fs_to_py(py: Python<'_>, reader: &VersionReader, path: &str, e: FsError) -> PyErr {
    match e {
        FsError::NotFound | FsError::NotADirectory | FsError::IsADirectory => {
            let at = format!("{}/{path}", reader.label());
            to_py(py, &Located { at, source: e })
        }
        e => to_py(py, &e),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{at}: {source}")]
struct Located {
    at: String,
    #[source]
    source: FsError,
}

/// One resolved version of an artifact, read in-process.
#[pyclass(module = "artfs._native", frozen)]
struct Version {
    reader: VersionReader,
}

#[pymethods]
impl Version {
    /// Resolves `artifact` (`[[entity/]project/]name[:alias|:vN]`) now.
    #[new]
    #[pyo3(signature = (artifact, registry=None, entity=None, project=None, cache_dir=None, cache_size=None))]
    fn new(
        py: Python<'_>,
        artifact: &str,
        registry: Option<String>,
        entity: Option<String>,
        project: Option<String>,
        cache_dir: Option<PathBuf>,
        cache_size: Option<String>,
    ) -> PyResult<Version> {
        let settings = ReaderSettings { registry, entity, project, cache_dir, cache_size };
        let reader = py.detach(|| VersionReader::open(&settings, artifact));
        match reader {
            Ok(reader) => Ok(Version { reader }),
            Err(e) => Err(to_py(py, e.as_ref())),
        }
    }

    /// `entity/project/name:vN`.
    #[getter]
    fn label(&self) -> &str {
        self.reader.label()
    }

    /// `(is_dir, size)` of the file or directory at `path`.
    fn stat(&self, py: Python<'_>, path: &str) -> PyResult<(bool, u64)> {
        match py.detach(|| self.reader.stat(path)) {
            Ok(Stat { is_dir, size }) => Ok((is_dir, size)),
            Err(e) => Err(fs_to_py(py, &self.reader, path, e)),
        }
    }

    /// `[(name, is_dir, size)]` of the directory at `path`.
    fn list(&self, py: Python<'_>, path: &str) -> PyResult<Vec<(String, bool, u64)>> {
        match py.detach(|| self.reader.list(path)) {
            Ok(entries) => Ok(entries.into_iter().map(|(n, s)| (n, s.is_dir, s.size)).collect()),
            Err(e) => Err(fs_to_py(py, &self.reader, path, e)),
        }
    }

    /// Opens the file at `path` and returns its handle.
    fn open(&self, py: Python<'_>, path: &str) -> PyResult<u64> {
        match py.detach(|| self.reader.open_file(path)) {
            Ok(fh) => Ok(fh.0),
            Err(e) => Err(fs_to_py(py, &self.reader, path, e)),
        }
    }

    /// Up to `length` bytes of open file `fh` from `offset`, each verified before it is returned.
    fn read<'py>(
        &self,
        py: Python<'py>,
        fh: u64,
        offset: u64,
        length: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        match py.detach(|| self.reader.read(HandleNo(fh), offset, length)) {
            Ok(bytes) => Ok(PyBytes::new(py, &bytes)),
            Err(e) => Err(to_py(py, &e)),
        }
    }

    /// Closes open file `fh`.
    fn close(&self, fh: u64) {
        self.reader.release(HandleNo(fh));
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Version>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
