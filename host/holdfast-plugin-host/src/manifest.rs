//! A driver's own name and version, as the SDK stamps them into a custom section
//! (`holdfast-driver`: `name=…\nversion=…\nwit=…\n`) of the component's core module.
//! Read from the bytes before anything runs; the text comes from the vendor, so it
//! is bounded and checked like any untrusted input, and absent or bad it is ignored.

/// The custom section's name.
pub const SECTION: &str = "holdfast-driver";
/// Longest section read, and longest value kept.
const MAX_SECTION: usize = 1024;
const MAX_VALUE: usize = 64;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub name: Option<String>,
    pub version: Option<String>,
}

fn clean(v: &str) -> Option<String> {
    let ok = !v.is_empty()
        && v.len() <= MAX_VALUE
        && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'));
    ok.then(|| v.to_owned())
}

/// The manifest of a component (or core module), if it carries a well-formed one.
pub fn read(bytes: &[u8]) -> Manifest {
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else { return Manifest::default() };
        if let wasmparser::Payload::CustomSection(s) = payload
            && s.name() == SECTION
            && s.data().len() <= MAX_SECTION
        {
            let text = String::from_utf8_lossy(s.data());
            let mut m = Manifest::default();
            for line in text.lines() {
                match line.split_once('=') {
                    Some(("name", v)) => m.name = clean(v.trim()),
                    Some(("version", v)) => m.version = clean(v.trim()),
                    _ => {}
                }
            }
            return m;
        }
    }
    Manifest::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core module holding one custom section.
    fn module_with(name: &str, data: &[u8]) -> Vec<u8> {
        let mut payload = vec![name.len() as u8];
        payload.extend_from_slice(name.as_bytes());
        payload.extend_from_slice(data);
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        m.push(0);
        m.push(payload.len() as u8);
        m.extend_from_slice(&payload);
        m
    }

    #[test]
    fn stamped_values_are_read_and_hostile_ones_dropped() {
        let m = read(&module_with(SECTION, b"name=acme\nversion=1.2.0\nwit=0.1.0\n"));
        assert_eq!(m, Manifest { name: Some("acme".into()), version: Some("1.2.0".into()) });
        let m = read(&module_with(SECTION, b"name=../../etc\nversion=1.0 \x1b[31mred\n"));
        assert_eq!(m, Manifest::default());
        assert_eq!(read(&module_with("other", b"name=x")), Manifest::default());
        assert_eq!(read(b"not wasm at all"), Manifest::default());
    }
}
