use autocandle_core::AutoRegister;

#[derive(AutoRegister)]
#[auto(model_type = "bert", task = "masked-lm", prefix = "bert")]
struct BertForMaskedLM;

#[derive(AutoRegister)]
#[auto(config, model_type = "bert", serde(rename_all = "snake_case"))]
struct BertConfig;

fn main() {}
