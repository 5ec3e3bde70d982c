//! nodes.conf on disk: read once at start, written after every change the
//! state machine asks to save, as Redis's `clusterSaveConfig` does it — a
//! temporary file beside it, synced, then renamed over it, so a crash
//! leaves the old file or the new one, never half of one.

use std::io::Write as _;

/// The file's text, or None if there is none yet (a first start).
pub(super) fn read(path: &str) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok(None),
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!(
            "cannot read the cluster config file {path}: {}",
            ringcast_core::errors::strerror(&e)
        )),
    }
}

/// Replace the file's content in one step.
pub(super) fn write(path: &str, content: &str) -> std::io::Result<()> {
    let tmp = format!("{path}.tmp-{}", std::process::id());
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(content.as_bytes())?;
        f.sync_all()
    });
    let renamed = written.and_then(|()| std::fs::rename(&tmp, path));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_file_reads_back_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("ringcast-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("nodes.conf").display().to_string();
        assert_eq!(read(&path).unwrap(), None);
        write(&path, "one\n").unwrap();
        write(&path, "two\n").unwrap();
        assert_eq!(read(&path).unwrap().as_deref(), Some("two\n"));
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(names.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
