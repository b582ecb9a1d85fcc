use autocandle_core::AutoRegister;

#[derive(AutoRegister)]
#[auto(config, model_type = "bert", task = "masked-lm")]
struct BertConfig;

fn main() {}
