use autocandle_core::AutoRegister;

#[derive(AutoRegister)]
#[auto(config model_type = "bert")]
struct BertConfig;

#[derive(AutoRegister)]
#[auto = "bert"]
struct BertModel;

fn main() {}
