//! Reads a `.tiktoken` BPE table: one `base64-token rank` pair per line.

use base64::Engine;

use super::ConvertError;

/// The tokens' bytes in file order (which is rank order).
pub fn read(text: &str) -> Result<Vec<Vec<u8>>, ConvertError> {
    let mut tokens = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(token), Some(_rank)) = (parts.next(), parts.next()) else {
            return Err(ConvertError::Vocabulary(format!(
                "line {}: expected `token rank`",
                i + 1
            )));
        };
        // Decode as Python's lenient b64decode does: the multilingual table
        // holds a bare "=" for an empty token.
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(token.trim_end_matches('='))
            .map_err(|e| ConvertError::Vocabulary(format!("line {}: {e}", i + 1)))?;
        tokens.push(bytes);
    }
    if tokens.is_empty() {
        return Err(ConvertError::Vocabulary("no tokens".into()));
    }
    Ok(tokens)
}
