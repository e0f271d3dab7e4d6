//! The built site's static directories (`/pkg`, `/vendor`, `/runner`, `/js`),
//! served with the `.br` and `.gz` variants the build writes beside a file, so
//! a browser gets it compressed at the best ratio without the server
//! compressing it on every request.
//!
//! The bundle (`pkg/`) is rebuilt often, so its variants are checked when the
//! server starts: one older than its file (the file was rebuilt and the
//! compression step in `./x build` did not run again, as after a plain
//! `cargo leptos build`) would send the old bytes under the new name, so then
//! the bundle is served without its variants and the compression layer
//! compresses it on the fly. The vendor files come from pinned npm packages and
//! are copied with their variants (which gives them arbitrary copy times), so
//! their variants are not checked.

use std::{
    fs,
    path::{Path, PathBuf},
    time::SystemTime,
};
use tower_http::services::ServeDir;

/// Extensions of the precompressed variants `scripts/compress.mjs` writes.
const VARIANT_EXTENSIONS: [&str; 2] = ["br", "gz"];

/// Serves `site_root/dir` with its precompressed variants where present.
pub fn serve_dir(site_root: &Path, dir: &str) -> ServeDir {
    ServeDir::new(site_root.join(dir))
        .precompressed_br()
        .precompressed_gzip()
}

/// Serves the bundle directory `site_root/dir`, with its precompressed
/// variants only if none of them is stale.
pub fn serve_bundle(site_root: &Path, dir: &str) -> ServeDir {
    let path = site_root.join(dir);
    match stale_variant(&path) {
        None => serve_dir(site_root, dir),
        Some(stale) => {
            tracing::warn!(
                variant = %stale.display(),
                "a precompressed file is older than the file it compresses (or has none): \
                 serving {} compressed on the fly; `./x build` writes the files again",
                path.display()
            );
            ServeDir::new(path)
        }
    }
}

/// The first variant under `dir` that is older than its file or whose file is
/// gone; `None` when every variant is current (or `dir` cannot be read: then
/// there is nothing to serve either).
fn stale_variant(dir: &Path) -> Option<PathBuf> {
    let entries = fs::read_dir(dir).ok()?;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if let Some(stale) = stale_variant(&path) {
                return Some(stale);
            }
            continue;
        }
        let is_variant = path
            .extension()
            .and_then(|extension| extension.to_str())
            .is_some_and(|extension| VARIANT_EXTENSIONS.contains(&extension));
        if !is_variant {
            continue;
        }
        let original = path.with_extension("");
        match (modified(&path), modified(&original)) {
            (Some(variant), Some(file)) if variant >= file => {}
            _ => return Some(path),
        }
    }
    None
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|meta| meta.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn write(path: &Path, bytes: &[u8]) {
        fs::write(path, bytes).unwrap();
    }

    fn age(path: &Path, by: Duration) {
        let file = fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - by).unwrap();
    }

    #[test]
    fn variants_written_after_their_files_are_current() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("nested")).unwrap();
        for name in ["app.wasm", "nested/app.js"] {
            let file = dir.path().join(name);
            write(&file, b"code");
            age(&file, Duration::from_secs(60));
            write(&dir.path().join(format!("{name}.br")), b"br");
            write(&dir.path().join(format!("{name}.gz")), b"gz");
        }
        write(&dir.path().join("plain.css"), b"body {}");
        assert_eq!(stale_variant(dir.path()), None);
    }

    #[test]
    fn a_variant_older_than_its_rebuilt_file_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("nested")).unwrap();
        let file = dir.path().join("nested/app.wasm");
        let variant = dir.path().join("nested/app.wasm.br");
        write(&file, b"new code");
        write(&variant, b"old br");
        age(&variant, Duration::from_secs(60));
        assert_eq!(stale_variant(dir.path()), Some(variant));
    }

    #[test]
    fn a_variant_without_its_file_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let variant = dir.path().join("removed.js.gz");
        write(&variant, b"gz");
        assert_eq!(stale_variant(dir.path()), Some(variant));
    }

    #[test]
    fn a_missing_directory_has_no_stale_variant() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(stale_variant(&dir.path().join("absent")), None);
    }
}
