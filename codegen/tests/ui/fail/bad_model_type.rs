use autocandle_core::AutoRegister;

#[derive(AutoRegister)]
#[auto(config, model_type = "Bert")]
struct BertConfig;

#[derive(AutoRegister)]
#[auto(config, model_type = "bert base")]
struct BertBaseConfig;

#[derive(AutoRegister)]
#[auto(config, model_type = "")]
struct EmptyConfig;

fn main() {}
