//! Audio files to samples: WAV, FLAC, MP3 and Ogg/Vorbis through symphonia, with bounded memory.

use std::fs::File;
use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_FLAC, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use autocandle_core::{Error, Result};

use super::resample::{check_rate, resample};

/// A decoded file: one `Vec` of samples in `[-1, 1]` per channel, at the file's rate.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedAudio {
    /// The samples of each channel (all equally long).
    pub channels: Vec<Vec<f32>>,
    /// The file's sampling rate in Hz.
    pub sampling_rate: u32,
}

impl DecodedAudio {
    /// The number of samples per channel.
    pub fn len(&self) -> usize {
        self.channels.first().map_or(0, Vec::len)
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The duration in seconds.
    pub fn duration_s(&self) -> f64 {
        self.len() as f64 / f64::from(self.sampling_rate.max(1))
    }

    /// The channels mixed to mono: their mean.
    pub fn to_mono(&self) -> Vec<f32> {
        self.mix(1.0 / self.channels.len().max(1) as f32)
    }

    /// The channels mixed to mono as `ffmpeg -ac 1` (and so `transformers`' `ffmpeg_read`) does
    /// it: stereo is `(left + right) / sqrt(2)` (ffmpeg's -3 dB centre level, 3 dB louder than
    /// the mean), other layouts the mean.
    pub fn to_mono_ffmpeg(&self) -> Vec<f32> {
        if self.channels.len() == 2 {
            self.mix(std::f32::consts::FRAC_1_SQRT_2)
        } else {
            self.to_mono()
        }
    }

    fn mix(&self, gain: f32) -> Vec<f32> {
        match self.channels.as_slice() {
            [] => Vec::new(),
            [one] => one.clone(),
            many => (0..self.len()).map(|i| many.iter().map(|c| c[i]).sum::<f32>() * gain).collect(),
        }
    }
}

/// Limits on what a file may decode to, so that memory stays bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioLoadOptions {
    /// The most samples (all channels together) a file may decode to; the default,
    /// 2^28 (1 GiB of f32, about 2 h 20 min of 16 kHz stereo), is far above what one model call
    /// takes. Longer recordings: raise it, or split the file.
    pub max_samples: usize,
    /// The most channels a file may have (default 16).
    pub max_channels: usize,
}

impl Default for AudioLoadOptions {
    fn default() -> Self {
        Self { max_samples: 1 << 28, max_channels: 16 }
    }
}

/// Decode an audio file (WAV, FLAC, MP3, Ogg/Vorbis), mix it to mono and resample it to
/// `sampling_rate` Hz: what `transformers`' pipelines get from `ffmpeg -ac 1 -ar RATE`
/// (`ffmpeg_read`): ffmpeg's stereo downmix ([`DecodedAudio::to_mono_ffmpeg`]) and a resampler
/// with ffmpeg's filter settings ([`resample`]). A 16 kHz 16-bit WAV comes out exactly as
/// ffmpeg gives it (`sample / 32768`).
pub fn load_audio(path: impl AsRef<Path>, sampling_rate: u32) -> Result<Vec<f32>> {
    load_audio_with(path, sampling_rate, &AudioLoadOptions::default())
}

/// [`load_audio`] with limits.
pub fn load_audio_with(path: impl AsRef<Path>, sampling_rate: u32, opts: &AudioLoadOptions) -> Result<Vec<f32>> {
    check_rate(sampling_rate, "the target rate")?;
    let decoded = decode_audio_with(path, opts)?;
    resample(&decoded.to_mono_ffmpeg(), decoded.sampling_rate, sampling_rate)
}

/// Decode an audio file (WAV, FLAC, MP3, Ogg/Vorbis) to its channels at its own rate.
pub fn decode_audio(path: impl AsRef<Path>) -> Result<DecodedAudio> {
    decode_audio_with(path, &AudioLoadOptions::default())
}

/// [`decode_audio`] with limits.
pub fn decode_audio_with(path: impl AsRef<Path>, opts: &AudioLoadOptions) -> Result<DecodedAudio> {
    let path = path.as_ref();
    // symphonia panics on some malformed headers (a WAV with a sample rate of 0): an error.
    crate::panic_guard::catch(|| decode_unguarded(path, opts)).unwrap_or_else(|panic| {
        Err(Error::input(format!(
            "`{}` is not an audio file autocandle can decode: the decoder failed on its header ({panic})",
            path.display()
        )))
    })
}

fn decode_unguarded(path: &Path, opts: &AudioLoadOptions) -> Result<DecodedAudio> {
    let shown = path.display();
    let _span = tracing::debug_span!("decode_audio", path = %shown).entered();
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let not_audio = |e: SymphoniaError| {
        Error::input(format!("`{shown}` is not an audio file autocandle can decode (WAV, FLAC, MP3, Ogg/Vorbis): {e}"))
    };
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            stream,
            &FormatOptions { enable_gapless: true, ..Default::default() },
            &MetadataOptions::default(),
        )
        .map_err(not_audio)?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| Error::input(format!("`{shown}` has no audio track")))?;
    let track_id = track.id;
    let params = track.codec_params.clone();
    let rate = params.sample_rate.ok_or_else(|| Error::input(format!("`{shown}` does not state its sampling rate")))?;
    check_rate(rate, &format!("`{shown}`"))?;
    let declared_channels = params.channels.map(|c| c.count());
    if let Some(n) = declared_channels {
        check_channels(n, opts, &shown.to_string())?;
    }
    // A header that promises more than the limit fails before anything is decoded.
    if let (Some(frames), Some(ch)) = (params.n_frames, declared_channels) {
        let total = frames.saturating_mul(ch as u64);
        if total > opts.max_samples as u64 {
            return Err(too_long(&shown.to_string(), total, rate, ch, opts));
        }
    }
    let mut decoder = symphonia::default::get_codecs().make(&params, &DecoderOptions::default()).map_err(not_audio)?;

    let mut channels: Vec<Vec<f32>> = Vec::new();
    let mut buffer: Option<SampleBuffer<f32>> = None;
    let mut decoded_total: u64 = 0;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymphoniaError::ResetRequired) => break,
            Err(e) => return Err(Error::input(format!("cannot read `{shown}`: {e}"))),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let audio = match decoder.decode(&packet) {
            Ok(a) => a,
            // A corrupt packet is skipped, as ffmpeg does.
            Err(SymphoniaError::DecodeError(e)) => {
                tracing::warn!(path = %shown, error = e, "skipping an undecodable packet");
                continue;
            }
            Err(e) => return Err(Error::input(format!("cannot decode `{shown}`: {e}"))),
        };
        let spec = *audio.spec();
        let n_ch = spec.channels.count();
        check_channels(n_ch, opts, &shown.to_string())?;
        if channels.is_empty() {
            channels = vec![Vec::new(); n_ch];
        } else if channels.len() != n_ch {
            return Err(Error::input(format!(
                "`{shown}` changes its channel count mid-stream ({} then {n_ch}): convert it to a fixed layout",
                channels.len()
            )));
        }
        let frames = audio.frames();
        decoded_total = decoded_total.saturating_add((frames * n_ch) as u64);
        if decoded_total > opts.max_samples as u64 {
            return Err(too_long(&shown.to_string(), decoded_total, rate, n_ch, opts));
        }
        let buf = match &mut buffer {
            Some(b) if b.capacity() >= audio.capacity() * n_ch => b,
            _ => buffer.insert(SampleBuffer::<f32>::new(audio.capacity() as u64, spec)),
        };
        buf.copy_planar_ref(audio);
        let planar = buf.samples();
        for (c, out) in channels.iter_mut().enumerate() {
            out.extend_from_slice(&planar[c * frames..(c + 1) * frames]);
        }
    }
    let decoded = channels.first().map_or(0, Vec::len) as u64;
    if decoded == 0 {
        return Err(Error::input(format!("`{shown}` holds no audio samples (empty or truncated file)")));
    }
    // PCM and FLAC headers state the exact length: fewer frames means a cut-off file. MP3 and
    // Vorbis lengths are estimates (encoder delay, padding), so only a large gap counts.
    if let Some(frames) = params.n_frames {
        let exact = params.codec == CODEC_TYPE_FLAC || is_pcm(params.codec);
        let slack = if exact { 0 } else { (frames / 20).max(4096) };
        if decoded + slack < frames {
            return Err(Error::input(format!(
                "`{shown}` is truncated: its header announces {frames} samples per channel but only {decoded} \
                 could be decoded; re-encode or re-download the file"
            )));
        }
    }
    // Decoders may run past the stated end (Vorbis' last packet): keep the stated length, as
    // ffmpeg does.
    if let Some(frames) = params.n_frames.filter(|&f| f > 0 && f < decoded) {
        for c in &mut channels {
            c.truncate(frames as usize);
        }
    }
    if let Some(j) = channels.iter().flat_map(|c| c.iter()).position(|x| !x.is_finite()) {
        return Err(Error::input(format!("`{shown}` holds a sample that is not a finite number (at {j})")));
    }
    tracing::debug!(rate, channels = channels.len(), frames = decoded, "audio decoded");
    Ok(DecodedAudio { channels, sampling_rate: rate })
}

fn is_pcm(codec: symphonia::core::codecs::CodecType) -> bool {
    use symphonia::core::codecs as c;
    [
        c::CODEC_TYPE_PCM_S16LE,
        c::CODEC_TYPE_PCM_S24LE,
        c::CODEC_TYPE_PCM_S32LE,
        c::CODEC_TYPE_PCM_U8,
        c::CODEC_TYPE_PCM_F32LE,
        c::CODEC_TYPE_PCM_F64LE,
        c::CODEC_TYPE_PCM_S8,
        c::CODEC_TYPE_PCM_ALAW,
        c::CODEC_TYPE_PCM_MULAW,
    ]
    .contains(&codec)
}

fn check_channels(n: usize, opts: &AudioLoadOptions, shown: &str) -> Result<()> {
    if n == 0 {
        return Err(Error::input(format!("`{shown}` has no channels")));
    }
    if n > opts.max_channels {
        return Err(Error::input(format!(
            "`{shown}` has {n} channels, more than the {} supported (`AudioLoadOptions::max_channels`): \
             mix it down first (e.g. `ffmpeg -i IN -ac 1 OUT.wav`) or raise the limit",
            opts.max_channels
        )));
    }
    Ok(())
}

fn too_long(shown: &str, total: u64, rate: u32, channels: usize, opts: &AudioLoadOptions) -> Error {
    let limit_s = opts.max_samples as f64 / (f64::from(rate) * channels.max(1) as f64);
    Error::input(format!(
        "`{shown}` decodes to {total} samples or more ({:.0} s of {channels}-channel audio at {rate} Hz), over \
         the limit of {} samples (about {limit_s:.0} s here, `AudioLoadOptions::max_samples`): raise the limit \
         or split the file (e.g. `ffmpeg -i IN -f segment -segment_time 600 OUT%03d.wav`)",
        total as f64 / (f64::from(rate) * channels.max(1) as f64),
        opts.max_samples
    ))
}
