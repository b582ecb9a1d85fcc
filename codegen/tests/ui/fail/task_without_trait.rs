use autocandle_core::AutoRegister;

#[derive(AutoRegister)]
#[auto(model_type = "t5", task = "seq2seq-lm", class = "T5ForConditionalGeneration")]
struct T5ForConditionalGeneration;

fn main() {}
