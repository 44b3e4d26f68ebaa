//! G.711 μ-law and A-law (ITU-T G.711), sample by sample.
//!
//! Encoders take 16-bit linear PCM; decoders return it. Both are the
//! classic segment-based implementations, exact to the standard's tables.

/// The two G.711 laws, with their static RTP payload types (RFC 3551).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Law {
    /// PCMU, payload type 0.
    MuLaw,
    /// PCMA, payload type 8.
    ALaw,
}

impl Law {
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Law::MuLaw => mulaw_encode(sample),
            Law::ALaw => alaw_encode(sample),
        }
    }

    pub fn decode(self, byte: u8) -> i16 {
        match self {
            Law::MuLaw => mulaw_decode(byte),
            Law::ALaw => alaw_decode(byte),
        }
    }
}

const MULAW_BIAS: i32 = 0x84;
const MULAW_CLIP: i32 = 32635;

pub fn mulaw_encode(sample: i16) -> u8 {
    let mut pcm = sample as i32;
    let sign = if pcm < 0 { 0x80 } else { 0 };
    if pcm < 0 {
        pcm = -pcm;
    }
    pcm = pcm.min(MULAW_CLIP) + MULAW_BIAS;
    // The segment is the position of the highest set bit above bit 7.
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && pcm & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (pcm >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) | mantissa) as u8
}

pub fn mulaw_decode(byte: u8) -> i16 {
    let u = !byte;
    let sign = u & 0x80;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0f) as i32;
    let magnitude = (((mantissa << 3) + MULAW_BIAS) << exponent) - MULAW_BIAS;
    if sign != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

pub fn alaw_encode(sample: i16) -> u8 {
    let mut pcm = sample as i32;
    let sign = if pcm >= 0 { 0x80 } else { 0 };
    if pcm < 0 {
        pcm = -pcm - 1;
    }
    pcm = pcm.min(0x7fff) >> 3;
    let encoded = if pcm < 32 {
        (pcm >> 1) as u8
    } else {
        let mut exponent = 1;
        let mut value = pcm >> 5;
        while value > 1 {
            exponent += 1;
            value >>= 1;
        }
        ((exponent << 4) | ((pcm >> exponent) & 0x0f)) as u8
    };
    (encoded | sign) ^ 0x55
}

pub fn alaw_decode(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let sign = a & 0x80;
    let exponent = ((a >> 4) & 0x07) as i32;
    let mantissa = (a & 0x0f) as i32;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    if sign != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mulaw_known_values() {
        assert_eq!(mulaw_encode(0), 0xff);
        assert_eq!(mulaw_decode(0xff), 0);
        assert_eq!(mulaw_decode(0x80), 32124);
        assert_eq!(mulaw_decode(0x00), -32124);
    }

    #[test]
    fn alaw_known_values() {
        assert_eq!(alaw_encode(0), 0xd5);
        assert_eq!(alaw_decode(0xd5), 8);
        assert_eq!(alaw_decode(0xaa), 32256);
        assert_eq!(alaw_decode(0x2a), -32256);
    }

    #[test]
    fn round_trip_error_is_within_the_segment_step() {
        for law in [Law::MuLaw, Law::ALaw] {
            for s in (-32768i32..32768).step_by(7) {
                let s = s as i16;
                let back = law.decode(law.encode(s)) as i32;
                let error = (back - s as i32).abs();
                // The quantisation step doubles per segment; 1/16 of the value
                // bounds it above the first segment.
                let bound = ((s as i32).abs() / 16).max(16) + 16;
                assert!(error <= bound, "{law:?}: {s} came back as {back}");
            }
        }
    }

    #[test]
    fn decode_encode_is_identity_on_codewords() {
        for law in [Law::MuLaw, Law::ALaw] {
            for b in 0..=255u8 {
                let s = law.decode(b);
                let again = law.encode(s);
                // μ-law has two codes for zero (0x7f and 0xff).
                assert_eq!(law.decode(again), s, "{law:?} code {b:#x}");
            }
        }
    }
}
