//! Sample-rate conversion with rubato: 8 kHz for the telephone, 16 kHz for
//! speech recognition, and whatever a file or a voice model produces.

use rubato::audioadapter_buffers::direct::SequentialSliceOfVecs;
use rubato::{
    Async, Fft, FixedAsync, FixedSync, Resampler, SincInterpolationParameters,
    SincInterpolationType, WindowFunction,
};

use super::{SampleRate, Samples};

/// Largest FFT size worth using; beyond it (rates with a small common
/// divisor, such as 44 101 Hz) the asynchronous sinc resampler is used.
const MAX_FFT_SIZE: u32 = 4096;

/// Resamples a whole buffer to `to`. The resampler's delay is removed, so
/// the output is aligned with the input and `len * to / from` long.
pub fn resample(input: &Samples, to: SampleRate) -> Samples {
    if input.rate == to || input.data.is_empty() || input.rate.0 == 0 {
        return Samples::new(to, input.data.clone());
    }
    let from = input.rate.0;
    let divisor = gcd(from, to.0);
    let fft_in = from / divisor;
    let chunk = 1024;
    let mut resampler: Box<dyn Resampler<f32>> = if fft_in <= MAX_FFT_SIZE {
        match Fft::<f32>::new(from as usize, to.0 as usize, chunk, 1, FixedSync::Input) {
            Ok(r) => Box::new(r),
            Err(_) => return linear(input, to),
        }
    } else {
        let params = SincInterpolationParameters {
            sinc_len: 128,
            f_cutoff: Some(0.95),
            interpolation: SincInterpolationType::Cubic,
            oversampling_factor: 128,
            window: WindowFunction::BlackmanHarris2,
        };
        match Async::<f32>::new_sinc(
            to.0 as f64 / from as f64,
            1.0,
            &params,
            chunk,
            1,
            FixedAsync::Input,
        ) {
            Ok(r) => Box::new(r),
            Err(_) => return linear(input, to),
        }
    };
    let len = input.data.len();
    let channels_in = vec![input.data.clone()];
    let Ok(buffer_in) = SequentialSliceOfVecs::new(&channels_in, 1, len) else {
        return linear(input, to);
    };
    let out_len = resampler.process_all_needed_output_len(len);
    let mut channels_out = vec![vec![0.0f32; out_len]];
    let Ok(mut buffer_out) = SequentialSliceOfVecs::new_mut(&mut channels_out, 1, out_len) else {
        return linear(input, to);
    };
    match resampler.process_all_into_buffer(&buffer_in, &mut buffer_out, len, None) {
        Ok((_, produced)) => {
            let mut data = channels_out.swap_remove(0);
            data.truncate(produced);
            Samples::new(to, data)
        }
        Err(_) => linear(input, to),
    }
}

/// Linear interpolation: only a fallback should rubato refuse a ratio.
fn linear(input: &Samples, to: SampleRate) -> Samples {
    let ratio = input.rate.0 as f64 / to.0 as f64;
    let n = (input.data.len() as f64 / ratio).floor() as usize;
    let last = input.data.len().saturating_sub(1);
    let data = (0..n)
        .map(|i| {
            let pos = i as f64 * ratio;
            let j = (pos.floor() as usize).min(last);
            let frac = (pos - j as f64) as f32;
            let a = input.data[j];
            let b = input.data[(j + 1).min(last)];
            a + (b - a) * frac
        })
        .collect();
    Samples::new(to, data)
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f32, seconds: f32) -> Samples {
        let n = (rate as f32 * seconds) as usize;
        let data = (0..n)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin())
            .collect();
        Samples::new(SampleRate(rate), data)
    }

    #[test]
    fn keeps_length_and_frequency() {
        for (from, to) in [
            (22_050, 8_000),
            (8_000, 16_000),
            (44_100, 16_000),
            (44_101, 8_000),
        ] {
            let input = tone(from, 440.0, 1.0);
            let out = resample(&input, SampleRate(to));
            let expected = to as usize;
            assert!(
                out.data.len().abs_diff(expected) <= 2,
                "{from}->{to}: {} samples",
                out.data.len()
            );
            let at_tone = out.tone_amplitude(440.0);
            let off_tone = out.tone_amplitude(1000.0);
            assert!(
                at_tone > 0.4 && off_tone < 0.02,
                "{from}->{to}: {at_tone} {off_tone}"
            );
        }
    }

    #[test]
    fn removes_content_above_the_new_nyquist() {
        let input = tone(22_050, 6_000.0, 1.0);
        let out = resample(&input, SampleRate(8_000));
        assert!(
            out.rms_dbfs() < -40.0,
            "6 kHz leaked through: {} dBFS",
            out.rms_dbfs()
        );
    }
}
