use autocandle_core::AutoRegister;

#[derive(AutoRegister)]
#[auto(model_type = "bert", task = "masked-lm", model_type = "roberta")]
struct BertForMaskedLM;

#[derive(AutoRegister)]
#[auto(config, model_type = "bert")]
#[auto(config)]
struct BertConfig;

fn main() {}
