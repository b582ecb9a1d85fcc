use autocandle_core::AutoRegister;

#[derive(AutoRegister)]
#[auto(model_type = "wav2vec2", task = "ctc", class = "Wav2Vec2ForCTC")]
struct Wav2Vec2ForCTC;

fn main() {}
