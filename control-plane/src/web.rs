//! Serving the built dashboard (single-page app) from a directory.

use std::path::Path;

use tower_http::services::{ServeDir, ServeFile};

/// Static files from `dir`; unknown paths get `index.html` so client-side routes work.
pub fn service(dir: &Path) -> ServeDir<ServeFile> {
    ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html")))
}
